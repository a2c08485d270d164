// Per-event speed of hepml from C++ (not a test): batch-1 latency and batch-256 throughput of
// the same model on each engine, through libhepml's C API with preallocated buffers.
//
//   bench CASES_DIR [SECONDS_PER_MEASUREMENT]
// CASES_DIR from scripts/make_cxx_cases.py; scripts/bench_cxx.sh builds and runs everything.
#include <hepml/hepml.hpp>

#include "read_f32.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using Clock = std::chrono::steady_clock;

struct Case {
  const char* name;
  const char* label;
  std::vector<std::string> inputs;
};

static volatile float sink;

// Calls `batch` events at a time, cycling through the rows, for about `seconds`; returns
// seconds per call (the median of ten segments).
static double measure(const hepml::Model& m, const std::vector<std::vector<float>>& data,
                      const std::vector<std::size_t>& widths, std::size_t rows, std::size_t batch,
                      double seconds) {
  std::size_t n = m.input_names().size();
  std::vector<int64_t> shape_store(2 * n);
  std::vector<const int64_t*> shapes(n);
  std::vector<std::size_t> ranks(n, 2);
  std::vector<const float*> ptrs(n);
  for (std::size_t k = 0; k < n; ++k) {
    shape_store[2 * k] = static_cast<int64_t>(batch);
    shape_store[2 * k + 1] = static_cast<int64_t>(widths[k]);
    shapes[k] = &shape_store[2 * k];
  }
  std::size_t o = 0;
  for (std::size_t i = 0; i < m.output_names().size(); ++i)
    if (m.output_names()[i] == m.default_output()) o = i;
  std::vector<float> out(batch * 64);
  std::size_t starts = rows - batch + 1;
  auto call = [&](std::size_t c) {
    std::size_t r = batch == 1 ? c % rows : (c * 7) % starts;
    for (std::size_t k = 0; k < n; ++k) ptrs[k] = &data[k][r * widths[k]];
    std::size_t len = 0;
    char* err = nullptr;
    if (hepml_run(m.handle(), n, nullptr, ptrs.data(), shapes.data(), ranks.data(), o,
                  out.data(), out.size(), &len, &err) != 0) {
      std::string msg = err ? err : "output buffer";
      hepml_free_string(err);
      throw hepml::Error(msg);
    }
    sink = out[0];
  };
  for (std::size_t c = 0; c < 200; ++c) call(c);  // warm up (tract plans, ORT arenas)
  // Ten segments; the median one is reported, so a noisy neighbour on a shared vCPU moves
  // one segment, not the figure.
  std::vector<double> per_call;
  std::size_t calls = 0;
  for (int seg = 0; seg < 10; ++seg) {
    std::size_t n_seg = 0, chunk = 16;
    auto t0 = Clock::now();
    double elapsed = 0;
    while (elapsed < seconds / 10) {
      for (std::size_t c = 0; c < chunk; ++c) call(calls + c);
      calls += chunk;
      n_seg += chunk;
      elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
      if (chunk < 4096) chunk *= 2;
    }
    per_call.push_back(elapsed / static_cast<double>(n_seg));
  }
  std::sort(per_call.begin(), per_call.end());
  return (per_call[4] + per_call[5]) / 2;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench CASES_DIR [SECONDS]\n");
    return 2;
  }
  std::string dir = argv[1];
  double seconds = argc > 2 ? std::stod(argv[2]) : 1.0;
  std::vector<Case> cases = {
      {"mlp_80_100_100_1", "MLP 80-100-100-1 (sklearn)", {"x"}},
      {"pnn", "PNN 5+1-12-8-1 (2 inputs)", {"features", "mass"}},
      {"gbc", "BDT 100 trees depth 3 (sklearn GBC)", {"x"}},
  };
  const char* engines[] = {"auto", "tract", "ort"};
  std::printf("%-38s %-7s %-34s %12s %14s\n", "model", "engine", "runs on", "batch-1 us",
              "batch-256 ev/s");
  for (const auto& c : cases) {
    double lat[3] = {0, 0, 0}, thr[3] = {0, 0, 0};
    for (int e = 0; e < 3; ++e) {
      try {
        hepml::Model m(dir + "/" + c.name + ".onnx", engines[e]);
        std::vector<std::vector<float>> data;
        std::vector<std::size_t> widths;
        for (const auto& in : c.inputs) {
          data.push_back(read_f32(dir + "/" + c.name + ".in." + in + ".f32"));
          widths.push_back(m.input_size(in));
        }
        std::size_t rows = data[0].size() / widths[0];
        lat[e] = measure(m, data, widths, rows, 1, seconds);
        thr[e] = 256.0 / measure(m, data, widths, rows, 256, seconds);
        std::string d = m.describe();
        std::printf("%-38s %-7s %-34.34s %12.3f %14.0f\n", c.label, engines[e], d.c_str(),
                    lat[e] * 1e6, thr[e]);
      } catch (const std::exception& err) {
        std::printf("%-38s %-7s unavailable: %s\n", c.label, engines[e], err.what());
      }
    }
    if (lat[0] > 0) {
      for (int e = 1; e < 3; ++e)
        if (lat[e] > 0)
          std::printf("%-38s hepml vs %-5s: batch-1 %.1fx faster, batch-256 %.1fx faster\n",
                      c.label, engines[e], lat[e] / lat[0], thr[0] / thr[e]);
    }
  }
  return 0;
}
