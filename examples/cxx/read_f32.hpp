// Shared by the examples (not part of hepml's API): a raw little-endian float32 file.
#ifndef HEPML_EXAMPLES_READ_F32_HPP
#define HEPML_EXAMPLES_READ_F32_HPP

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

/// A raw little-endian file of T values (float32 features, int64 event numbers).
template <class T>
std::vector<T> read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

inline std::vector<float> read_f32(const std::string& path) { return read_raw<float>(path); }

#endif
