//! C++ bridge to hepml inference — see issue 5.
