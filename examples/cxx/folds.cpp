// A k-fold ensemble from C++: each event scored by the fold that did not train on it, routed by
// its event number as `hepml inject` routes it.
//
//   g++ -std=c++17 folds.cpp -I<prefix>/include -L<prefix>/lib -lhepml -o folds
//   folds EXPORTED.onnx OUT.f32 X.f32 EVENTS.i64
//
// EXPORTED.onnx is the name given to `hepml export -o` (the folds are EXPORTED.fold<i>.onnx
// beside it). X.f32 holds the events' features (row-major float32), EVENTS.i64 their event
// numbers (int64). Writes each event's score to OUT.f32, one event per call, and checks that
// one routed batch gives the same values bit for bit.
#include <hepml/hepml.hpp>

#include "read_f32.hpp"

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: folds EXPORTED.onnx OUT.f32 X.f32 EVENTS.i64\n";
    return 2;
  }
  try {
    hepml::Folds folds = hepml::Folds::exported(argv[1]);
    std::cout << "folds: " << folds.k() << ", routed by " << folds.branch() << "\n";
    for (std::size_t i = 0; i < folds.k(); ++i)
      std::cout << "fold " << i << " engine: " << folds.fold(i).describe() << "\n";
    std::vector<float> x = read_f32(argv[3]);
    std::vector<int64_t> events = read_raw<int64_t>(argv[4]);
    if (events.empty() || x.size() % events.size() != 0)
      throw std::runtime_error(std::to_string(x.size()) + " values for " +
                               std::to_string(events.size()) + " events");
    std::size_t w = x.size() / events.size();
    std::vector<float> out;
    std::vector<std::size_t> per_fold(folds.k());
    for (std::size_t r = 0; r < events.size(); ++r) {
      out.push_back(folds.score(events[r], x.data() + r * w, w));
      ++per_fold[folds.fold_of(events[r])];
    }
    if (folds.evaluate_batch(events, x) != out) {
      std::cerr << "batched and per-event results differ\n";
      return 3;
    }
    std::ofstream f(argv[2], std::ios::binary);
    f.write(reinterpret_cast<const char*>(out.data()), out.size() * sizeof(float));
    std::cout << events.size() << " events:";
    for (std::size_t i = 0; i < folds.k(); ++i) std::cout << " " << per_fold[i] << " to fold " << i;
    std::cout << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
