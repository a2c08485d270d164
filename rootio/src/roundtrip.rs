//! Round trips through the internals on the real reference files: what is read through the
//! streamer-driven object model, or parsed as a streamer list, serialises back to the exact
//! bytes of the file. The writer's byte-for-byte copies rely on this.

use crate::object::Writer;
use crate::rbuf::WBuf;
use crate::streamers::Streamers;
use crate::RootFile;

/// TTree metadata read through the streamer-driven object model and written back gives the
/// exact bytes of the file: the model loses nothing (the writer's fast clone relies on this).
#[test]
fn ttree_metadata_reserialises_byte_identically() {
    for path in testutil::shared_root_files() {
        let f = RootFile::open(&path).unwrap();
        for tp in f.tree_paths().unwrap() {
            let key = f.find_key(&tp).unwrap();
            let (kh, payload) = f
                .read_key_payload(key.seek_key, key.nbytes as usize)
                .unwrap();
            let obj = f.read_object(&key).unwrap();
            let mut w = WBuf::new(kh.keylen as usize);
            Writer::new().write_object(&mut w, &obj).unwrap();
            assert!(
                w.data == payload,
                "{}:{tp}: re-serialised TTree differs",
                path.display()
            );
        }
    }
}

/// The streamer-info list parses and serialises back to the exact bytes of every file.
#[test]
fn streamer_lists_reserialise_byte_identically() {
    let mut files = testutil::shared_root_files();
    files.push(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/write/template-root-6.40.root"),
    );
    for path in files {
        let f = RootFile::open(&path).unwrap();
        let (kh, payload) = f
            .read_key_payload(f.seek_info, f.nbytes_info as usize)
            .unwrap();
        let s = Streamers::parse(&payload, kh.keylen as usize).unwrap();
        let back = s.to_payload(kh.keylen as usize);
        let first = back.iter().zip(&payload).position(|(a, b)| a != b);
        assert!(
            back == payload,
            "{}: differs at {first:?} (len {} vs {})",
            path.display(),
            back.len(),
            payload.len()
        );
    }
}

/// Every object of a file ROOT wrote (histograms with their `//->` members, TObjString, trees
/// in nested directories) reads and streams back to the bytes ROOT wrote: what a copy beyond
/// 2 GB relies on.
#[test]
fn every_object_of_a_mixed_file_reserialises_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.root");
    testutil::script(
        "verify_written.py",
        &["make-mixed", input.to_str().unwrap()],
    );
    let f = RootFile::open(&input).unwrap();
    let keys = f.walk_keys().unwrap();
    assert_eq!(keys.len(), 7);
    for (path, k) in keys {
        let (kh, payload) = f.read_key_payload(k.seek_key, k.nbytes as usize).unwrap();
        let obj = f.read_object(&k).unwrap();
        let mut w = WBuf::new(kh.keylen as usize);
        Writer::new().write_object(&mut w, &obj).unwrap();
        assert!(
            w.data == payload,
            "{path} ({}) streams back differently",
            k.class
        );
    }
}
