// Errors arrive as hepml::Error (a std::runtime_error) with hepml's message; nothing aborts.
// Prints one line per case: "CASE: <message>"; exits 1 if a case did not throw.
//
//   errors MLP.onnx PNN.onnx
#include <hepml/hepml.hpp>

#include <iostream>
#include <map>
#include <string>
#include <vector>

template <class F>
static bool expect_error(const char* what, F f) {
  try {
    f();
  } catch (const hepml::Error& e) {
    std::cout << what << ": " << e.what() << "\n";
    return true;
  }
  std::cout << what << ": NO EXCEPTION\n";
  return false;
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  std::string mlp = argv[1], pnn = argv[2];
  bool ok = true;
  ok &= expect_error("missing file", [] { hepml::Model m("/no/such/model.onnx"); });
  ok &= expect_error("unknown engine", [&] { hepml::Model m(mlp, "fastest"); });
  hepml::Model m(mlp), p(pnn);
  ok &= expect_error("wrong size", [&] { m.evaluate(std::vector<float>(m.input_size() + 1)); });
  ok &= expect_error("wrong batch size",
                     [&] { m.evaluate_batch(std::vector<float>(m.input_size() * 3 - 1), 3); });
  ok &= expect_error("unknown input", [&] {
    p.evaluate(std::map<std::string, std::vector<float>>{{"features", std::vector<float>(5)},
                                                         {"jets", {1.f}}});
  });
  ok &= expect_error("missing input",
                     [&] { p.evaluate({{"features", std::vector<float>(5)}}); });
  ok &= expect_error("wrong named size", [&] {
    p.evaluate({{"features", std::vector<float>(4)}, {"mass", {125.f}}});
  });
  ok &= expect_error("unknown output", [&] { m.evaluate(std::vector<float>(m.input_size()), "y"); });
  ok &= expect_error("positional multi-input", [&] { p.evaluate(std::vector<float>(6)); });
  // After all that, the models still work.
  float s = p.evaluate({{"features", std::vector<float>(5, 0.5f)}, {"mass", {90.f}}}).at(0);
  std::cout << "pnn still works: " << s << "\n";
  return ok ? 0 : 1;
}
