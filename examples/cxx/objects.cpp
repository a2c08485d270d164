// Per-object inputs with a mask (CMS ParticleNet): each jet's PF candidates and secondary
// vertices as lists of objects, padded by hepml::pad_objects to the model's lengths, with their
// masks, passed by name.
//
//   objects PARTICLENET.onnx CASES_DIR JETS OUT.f32
// CASES_DIR/particlenet.in.<input>.f32 hold JETS padded jets (make_cxx_cases.py); this program
// turns them back into per-jet object lists (the objects the mask marks) and scores each jet.
#include <hepml/hepml.hpp>

#include "read_f32.hpp"

#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

// Objects of jet j from a padded [jets, vars, length] array and its [jets, 1, length] mask.
static std::vector<std::vector<float>> objects_of(const std::vector<float>& x,
                                                  const std::vector<float>& mask, std::size_t j,
                                                  std::size_t vars, std::size_t length) {
  std::vector<std::vector<float>> objs;
  for (std::size_t i = 0; i < length; ++i) {
    if (mask[j * length + i] == 0.f) continue;
    std::vector<float> o(vars);
    for (std::size_t v = 0; v < vars; ++v) o[v] = x[(j * vars + v) * length + i];
    objs.push_back(o);
  }
  return objs;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: objects PARTICLENET.onnx CASES_DIR JETS OUT.f32\n";
    return 2;
  }
  try {
    hepml::Model m(argv[1]);
    std::string dir = argv[2];
    std::size_t jets = std::stoul(argv[3]);
    std::vector<float> out;
    std::vector<std::vector<float>> keep;  // padded data must outlive the call
    for (std::size_t j = 0; j < jets; ++j) {
      std::vector<hepml::Input> in;
      std::vector<hepml::Padded> padded;
      for (const char* group : {"pf", "sv"}) {
        std::string g = group;
        std::vector<float> mask = read_f32(dir + "/particlenet.in." + g + "_mask.f32");
        std::size_t length = mask.size() / jets;
        for (const char* part : {"_points", "_features"}) {
          std::vector<float> x = read_f32(dir + "/particlenet.in." + g + part + ".f32");
          std::size_t vars = x.size() / jets / length;
          padded.push_back(hepml::pad_objects(objects_of(x, mask, j, vars, length), length));
          // A jet without objects gives no variables: keep the model's count.
          if (padded.back().shape[1] == 0) {
            padded.back().data.assign(vars * length, 0.f);
            padded.back().shape[1] = static_cast<int64_t>(vars);
          }
        }
      }
      // pf_points, pf_features, sv_points, sv_features (+ masks) by name.
      const char* names[] = {"pf_points", "pf_features", "sv_points", "sv_features"};
      for (std::size_t k = 0; k < 4; ++k) in.push_back({names[k], padded[k].data.data(), padded[k].shape});
      in.push_back({"pf_mask", padded[1].mask.data(), padded[1].mask_shape});
      in.push_back({"sv_mask", padded[3].mask.data(), padded[3].mask_shape});
      std::vector<float> y = m.evaluate(in);
      out.insert(out.end(), y.begin(), y.end());
    }
    std::ofstream f(argv[4], std::ios::binary);
    f.write(reinterpret_cast<const char*>(out.data()), out.size() * sizeof(float));
    std::cout << "engine: " << m.describe() << "\n" << jets << " jets, " << out.size() << " values\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
