// ROOT macro: RDataFrame with implicit multi-threading and a hepml score column.
//
//   root -l -b -q 'rdf_define.C("model.onnx", "in.root", "events", "scores.f32")'
//
// One hepml::Model is shared by all RDataFrame worker threads. The input vector is built from
// the model's feature map (metadata hepml.inputs) as a jitted RVecF column.
R__LOAD_LIBRARY(libhepml.so)
#include <hepml/hepml.hpp>

#include <ROOT/RDataFrame.hxx>
#include <ROOT/RVec.hxx>
#include <TROOT.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

void rdf_define(const char* model, const char* input, const char* tree, const char* out) {
  ROOT::EnableImplicitMT(4);
  hepml::Model m(model);
  auto fmap = m.feature_map();
  if (fmap.size() != 1) throw hepml::Error("rdf_define: expects a model with one input");
  std::string vec = "ROOT::RVecF{";
  for (const auto& expr : fmap.begin()->second) vec += "static_cast<float>(" + expr + "),";
  vec.back() = '}';

  ROOT::RDataFrame df(tree, input);
  auto scored = df.Define("x", vec).Define(
      "score", [&m](const ROOT::RVecF& x) { return m.score(x.data(), x.size()); }, {"x"});
  auto h = scored.Histo1D({"score", "hepml score", 50, 0., 1.}, "score");
  auto entry = scored.Take<ULong64_t>("rdfentry_");
  auto score = scored.Take<float>("score");
  // Implicit MT returns the rows in task order: put them back in entry order.
  std::vector<float> ordered(entry->size());
  for (size_t i = 0; i < entry->size(); ++i) ordered.at((*entry)[i]) = (*score)[i];
  std::ofstream o(out, std::ios::binary);
  o.write(reinterpret_cast<const char*>(ordered.data()), ordered.size() * sizeof(float));
  printf("rdf_define: threads %u entries %lld mean %.6f\n", ROOT::GetThreadPoolSize(),
         static_cast<long long>(h->GetEntries()), h->GetMean());
}
