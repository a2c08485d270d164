// A plain C++ program using hepml: scores events read from raw float32 files.
//
//   g++ -std=c++17 plain.cpp -I<prefix>/include -L<prefix>/lib -lhepml -o plain
//   plain MODEL ROWS OUT.f32 INPUT=FILE.f32 [INPUT=FILE.f32 ...]
//
// Each FILE holds ROWS events of that input (row-major float32). Writes the model's default
// output for every event to OUT.f32, evaluating one event per call (a single-input model
// through evaluate(std::vector<float>), several inputs by name), and checks that one batched
// call gives the same values bit for bit.
#include <hepml/hepml.hpp>

#include "read_f32.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: plain MODEL ROWS OUT.f32 INPUT=FILE.f32 ...\n";
    return 2;
  }
  try {
    hepml::Model m(argv[1]);
    std::size_t rows = std::stoul(argv[2]);
    std::cout << "engine: " << m.describe() << "\n";
    for (const auto& name : m.input_names())
      std::cout << "input " << name << ": " << m.input_size(name) << " values per event\n";
    for (const auto& kv : m.feature_map()) {
      std::cout << "features of " << kv.first << ":";
      for (const auto& f : kv.second) std::cout << " " << f;
      std::cout << "\n";
    }
    std::cout << "output: " << m.default_output() << " (" << m.output_size() << " per event)\n";

    std::map<std::string, std::vector<float>> data;
    for (int a = 4; a < argc; ++a) {
      std::string arg = argv[a];
      auto eq = arg.find('=');
      data[arg.substr(0, eq)] = read_f32(arg.substr(eq + 1));
    }
    std::vector<float> out;
    for (std::size_t r = 0; r < rows; ++r) {
      std::vector<float> y;
      if (data.size() == 1) {
        const auto& x = data.begin()->second;
        std::size_t w = x.size() / rows;
        y = m.evaluate(std::vector<float>(x.begin() + r * w, x.begin() + (r + 1) * w));
      } else {
        std::map<std::string, std::vector<float>> event;
        for (const auto& kv : data) {
          std::size_t w = kv.second.size() / rows;
          event[kv.first].assign(kv.second.begin() + r * w, kv.second.begin() + (r + 1) * w);
        }
        y = m.evaluate(event);
      }
      out.insert(out.end(), y.begin(), y.end());
    }
    std::vector<float> batch;
    if (data.size() == 1) {
      batch = m.evaluate_batch(data.begin()->second, rows);
    } else {
      std::vector<hepml::Input> in;
      for (const auto& kv : data)
        in.push_back({kv.first, kv.second.data(),
                      {static_cast<int64_t>(rows), static_cast<int64_t>(kv.second.size() / rows)}});
      batch = m.evaluate(in);
    }
    if (batch != out) {
      std::cerr << "batched and per-event results differ\n";
      return 3;
    }
    std::ofstream f(argv[3], std::ios::binary);
    f.write(reinterpret_cast<const char*>(out.data()), out.size() * sizeof(float));
    std::cout << rows << " events, " << out.size() << " values written\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
