// ROOT macro: score every event of a TTree with hepml and fill a histogram.
//
//   export ROOT_INCLUDE_PATH=<prefix>/include LD_LIBRARY_PATH=<prefix>/lib
//   root -l -b -q 'tree_loop.C("model.onnx", "in.root", "events", "scores.f32")'
//
// The model's feature map (metadata hepml.inputs) names the branches or expressions of each
// input column; TTreeFormula evaluates them, whatever the branch types.
R__LOAD_LIBRARY(libhepml.so)
#include <hepml/hepml.hpp>

#include <TFile.h>
#include <TH1F.h>
#include <TTree.h>
#include <TTreeFormula.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

void tree_loop(const char* model, const char* input, const char* tree, const char* out) {
  hepml::Model m(model);
  auto fmap = m.feature_map();
  if (fmap.size() != 1) throw hepml::Error("tree_loop: expects a model with one input");
  const auto& features = fmap.begin()->second;

  TFile f(input);
  auto* t = f.Get<TTree>(tree);
  if (!t) throw hepml::Error(std::string("no tree ") + tree);
  std::vector<std::unique_ptr<TTreeFormula>> forms;
  for (const auto& expr : features)
    forms.emplace_back(new TTreeFormula(expr.c_str(), expr.c_str(), t));

  TH1F h("score", "hepml score;score;events", 50, 0., 1.);
  std::vector<float> x(features.size()), scores;
  for (Long64_t i = 0; i < t->GetEntries(); ++i) {
    t->LoadTree(i);
    for (size_t k = 0; k < forms.size(); ++k) {
      forms[k]->GetNdata();
      x[k] = static_cast<float>(forms[k]->EvalInstance());
    }
    float s = m.score(x);
    h.Fill(s);
    scores.push_back(s);
  }
  std::ofstream o(out, std::ios::binary);
  o.write(reinterpret_cast<const char*>(scores.data()), scores.size() * sizeof(float));
  printf("tree_loop: engine %s\n", m.describe().c_str());
  printf("tree_loop: entries %lld mean %.6f\n", static_cast<long long>(h.GetEntries()), h.GetMean());
}
