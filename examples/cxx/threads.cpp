// One hepml::Model shared by many threads: every thread scores the same events CALLS times
// (cycling through them) and must get exactly the single-threaded values.
//
//   threads MODEL INPUT.f32 ROWS THREADS CALLS
#include <hepml/hepml.hpp>

#include "read_f32.hpp"

#include <atomic>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: threads MODEL INPUT.f32 ROWS THREADS CALLS\n";
    return 2;
  }
  try {
    hepml::Model m(argv[1]);
    std::vector<float> x = read_f32(argv[2]);
    std::size_t rows = std::stoul(argv[3]), nthreads = std::stoul(argv[4]),
                calls = std::stoul(argv[5]);
    std::size_t w = m.input_size(), k = m.output_size();
    if (rows == 0 || x.size() != rows * w) {
      std::cerr << "input file holds " << x.size() << " values, not " << rows << " x " << w << "\n";
      return 2;
    }
    // Single-threaded reference.
    std::vector<float> want(rows * k);
    for (std::size_t r = 0; r < rows; ++r) m.evaluate(&x[r * w], w, &want[r * k], k);
    std::atomic<std::size_t> bad{0}, done{0};
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < nthreads; ++t)
      pool.emplace_back([&, t] {
        std::vector<float> y(k);
        for (std::size_t c = 0; c < calls; ++c) {
          std::size_t r = (c + t * 7) % rows;
          m.evaluate(&x[r * w], w, y.data(), k);
          if (std::memcmp(y.data(), &want[r * k], k * sizeof(float)) != 0) ++bad;
          ++done;
        }
      });
    for (auto& th : pool) th.join();
    std::cout << "calls " << done.load() << " mismatches " << bad.load() << "\n";
    return bad.load() == 0 && done.load() == nthreads * calls ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
