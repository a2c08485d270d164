// hepml inference from C++: header-only wrapper over libhepml.so (compile with
// -I<prefix>/include, link with -L<prefix>/lib -lhepml; in ROOT: R__LOAD_LIBRARY(libhepml.so)).
//
//   hepml::Model m("model.onnx");
//   float s = m.score({pt, eta, phi, mass, ...});            // one event, default output
//   std::vector<float> p = m.evaluate(x);                    // the default output's values
//   std::vector<float> b = m.evaluate_batch(xs, n_events);   // a batch, row-major
//   m.evaluate({{"features", f}, {"mass", {125.f}}});       // named inputs (one event)
//
// One Model may be used from any number of threads at once (const methods; the engine keeps
// per-thread scratch). Errors (missing file, unknown input, wrong size) throw hepml::Error with
// hepml's message.
#ifndef HEPML_HPP
#define HEPML_HPP

#include <hepml/hepml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace hepml {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// One input tensor for a named evaluation: `shape` has the batch first.
struct Input {
  std::string name;
  const float* data;
  std::vector<int64_t> shape;
};

/// Objects (jets, PF candidates, ...) padded to a fixed length, with their mask, for models
/// that take `[batch, vars, length]` (vars_first, ParticleNet) or `[batch, length, vars]`.
struct Padded {
  std::vector<float> data;
  std::vector<float> mask;  // 1 for a real object, 0 for padding
  std::vector<int64_t> shape;
  std::vector<int64_t> mask_shape;  // [1, 1, length] (vars_first) or [1, length, 1]
};

/// `objects[i][v]` = variable v of object i; the first `length` objects are kept.
inline Padded pad_objects(const std::vector<std::vector<float>>& objects, std::size_t length,
                          bool vars_first = true, float pad = 0.f) {
  std::size_t vars = objects.empty() ? 0 : objects[0].size();
  Padded p;
  p.data.assign(vars * length, pad);
  p.mask.assign(length, 0.f);
  for (std::size_t i = 0; i < objects.size() && i < length; ++i) {
    if (objects[i].size() != vars)
      throw Error("hepml::pad_objects: object " + std::to_string(i) + " has " +
                  std::to_string(objects[i].size()) + " variables, object 0 has " +
                  std::to_string(vars));
    for (std::size_t v = 0; v < vars; ++v)
      p.data[vars_first ? v * length + i : i * vars + v] = objects[i][v];
    p.mask[i] = 1.f;
  }
  int64_t L = static_cast<int64_t>(length), V = static_cast<int64_t>(vars);
  p.shape = vars_first ? std::vector<int64_t>{1, V, L} : std::vector<int64_t>{1, L, V};
  p.mask_shape = vars_first ? std::vector<int64_t>{1, 1, L} : std::vector<int64_t>{1, L, 1};
  return p;
}

class Model {
public:
  /// Opens an ONNX model. `engine`: "auto" (default: native evaluators, else ONNX Runtime when
  /// found, else tract), "native", "tract", "trees", "ort".
  explicit Model(const std::string& path, const std::string& engine = "auto") {
    char* err = nullptr;
    m_ = hepml_open(path.c_str(), engine.c_str(), &err);
    if (!m_) throw_message(err);
    default_output_ = hepml_default_output(m_);
    for (std::size_t i = 0; i < hepml_num_inputs(m_); ++i) {
      inputs_.emplace_back(hepml_input_name(m_, i));
      input_sizes_.push_back(event_size(hepml_input_shape(m_, i, nullptr, 0), true, i));
    }
    for (std::size_t i = 0; i < hepml_num_outputs(m_); ++i) {
      outputs_.emplace_back(hepml_output_name(m_, i));
      output_sizes_.push_back(event_size(hepml_output_shape(m_, i, nullptr, 0), false, i));
    }
  }
  ~Model() { hepml_close(m_); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&& o) noexcept { *this = std::move(o); }
  Model& operator=(Model&& o) noexcept {
    if (this != &o) {
      hepml_close(m_);
      m_ = o.m_;
      o.m_ = nullptr;
      inputs_ = std::move(o.inputs_);
      outputs_ = std::move(o.outputs_);
      input_sizes_ = std::move(o.input_sizes_);
      output_sizes_ = std::move(o.output_sizes_);
      default_output_ = o.default_output_;
    }
    return *this;
  }

  /// Engine and model, e.g. "native dense (dense 80-100-100-1, avx+fma) on ...".
  std::string describe() const { return hepml_describe(m_); }
  const std::vector<std::string>& input_names() const { return inputs_; }
  const std::vector<std::string>& output_names() const { return outputs_; }
  /// The output evaluate() returns unless told otherwise.
  const std::string& default_output() const { return outputs_.at(default_output_); }
  /// Values per event of an input / output (0 where a dimension is symbolic).
  std::size_t input_size(const std::string& name) const { return input_sizes_[input_index(name)]; }
  std::size_t input_size(std::size_t i = 0) const { return input_sizes_.at(i); }
  std::size_t output_size(const std::string& name) const {
    return output_sizes_[output_index(name)];
  }
  std::size_t output_size() const { return output_sizes_.at(default_output_); }
  /// An input's shape, batch first; -1 for a symbolic dimension.
  std::vector<int64_t> input_shape(const std::string& name) const {
    std::size_t i = input_index(name);
    std::vector<int64_t> d(hepml_input_shape(m_, i, nullptr, 0));
    hepml_input_shape(m_, i, d.data(), d.size());
    return d;
  }
  /// The model's feature map (metadata hepml.inputs): input name -> branches / expressions.
  std::map<std::string, std::vector<std::string>> feature_map() const {
    std::map<std::string, std::vector<std::string>> fm;
    for (std::size_t i = 0; i < inputs_.size(); ++i) {
      std::size_t n = hepml_num_features(m_, i);
      if (n == 0) continue;
      auto& v = fm[inputs_[i]];
      for (std::size_t j = 0; j < n; ++j) v.emplace_back(hepml_feature(m_, i, j));
    }
    return fm;
  }
  /// All metadata_props.
  std::map<std::string, std::string> metadata() const {
    std::map<std::string, std::string> md;
    for (std::size_t i = 0; i < hepml_num_metadata(m_); ++i) {
      const char* k = hepml_metadata_key(m_, i);
      md[k] = hepml_metadata(m_, k);
    }
    return md;
  }

  /// One event of a single-input model: the default output's values for it (no allocation
  /// inside hepml on the native path). Returns the number of values written.
  std::size_t evaluate(const float* x, std::size_t n, float* out, std::size_t out_n) const {
    return run_single(x, n, 1, default_output_, out, out_n);
  }
  std::vector<float> evaluate(const std::vector<float>& x) const {
    return evaluate_batch(x.data(), x.size(), 1, default_output_);
  }
  std::vector<float> evaluate(const std::vector<float>& x, const std::string& output) const {
    return evaluate_batch(x.data(), x.size(), 1, output_index(output));
  }
  /// One event: the last value of the default output (a binary classifier's signal
  /// probability, a single-score model's score).
  float score(const float* x, std::size_t n) const {
    float buf[64];
    std::size_t k = output_sizes_[default_output_];
    if (k > 0 && k <= 64) {
      std::size_t got = run_single(x, n, 1, default_output_, buf, k);
      return buf[got - 1];
    }
    std::vector<float> v = evaluate_batch(x, n, 1, default_output_);
    if (v.empty()) throw Error("hepml: the model returned no values");
    return v.back();
  }
  float score(const std::vector<float>& x) const { return score(x.data(), x.size()); }

  /// `batch` events, row-major (`x.size() == batch * input_size()`): the default output,
  /// `batch * output_size()` values.
  std::vector<float> evaluate_batch(const std::vector<float>& x, std::size_t batch) const {
    return evaluate_batch(x.data(), x.size(), batch, default_output_);
  }
  std::vector<float> evaluate_batch(const float* x, std::size_t n, std::size_t batch,
                                    std::size_t output) const {
    std::vector<float> out(batch * output_sizes_.at(output));
    std::size_t got = run_single(x, n, batch, output, out.data(), out.size());
    out.resize(got);
    return out;
  }

  /// Named inputs, one event each (shape [1, size]); for multi-input models (a PNN's features
  /// and mass).
  std::vector<float> evaluate(const std::map<std::string, std::vector<float>>& named,
                              const std::string& output = "") const {
    std::vector<Input> in;
    for (const auto& kv : named)
      in.push_back({kv.first, kv.second.data(), {1, static_cast<int64_t>(kv.second.size())}});
    return evaluate(in, output);
  }
  /// Named inputs with explicit shapes (batch first): per-object inputs, masks, batches.
  std::vector<float> evaluate(const std::vector<Input>& inputs,
                              const std::string& output = "") const {
    std::size_t o = output.empty() ? default_output_ : output_index(output);
    std::vector<const char*> names;
    std::vector<const float*> data;
    std::vector<const int64_t*> shapes;
    std::vector<std::size_t> ranks;
    for (const auto& i : inputs) {
      names.push_back(i.name.c_str());
      data.push_back(i.data);
      shapes.push_back(i.shape.data());
      ranks.push_back(i.shape.size());
    }
    std::vector<float> out(inputs.empty() || inputs[0].shape.empty()
                               ? 16
                               : static_cast<std::size_t>(inputs[0].shape[0]) *
                                     (output_sizes_[o] ? output_sizes_[o] : 16));
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::size_t len = 0;
      char* err = nullptr;
      int rc = hepml_run(m_, inputs.size(), names.data(), data.data(), shapes.data(),
                         ranks.data(), o, out.data(), out.size(), &len, &err);
      if (rc == 1) throw_message(err);
      out.resize(len);
      if (rc == 0) return out;
    }
    throw Error("hepml: output size changed between calls");
  }

  const hepml_model* handle() const { return m_; }

private:
  static void throw_message(char* err) {
    std::string msg = err ? err : "hepml: unknown error";
    hepml_free_string(err);
    throw Error(msg);
  }

  std::size_t event_size(std::size_t rank, bool input, std::size_t i) const {
    std::vector<int64_t> d(rank);
    if (input)
      hepml_input_shape(m_, i, d.data(), rank);
    else
      hepml_output_shape(m_, i, d.data(), rank);
    std::size_t n = 1;
    for (std::size_t k = 1; k < rank; ++k) {
      if (d[k] < 0) return 0;
      n *= static_cast<std::size_t>(d[k]);
    }
    return n;
  }

  std::size_t input_index(const std::string& name) const {
    for (std::size_t i = 0; i < inputs_.size(); ++i)
      if (inputs_[i] == name) return i;
    throw Error("hepml: the model has no input '" + name + "' (" + join(inputs_) + ")");
  }
  std::size_t output_index(const std::string& name) const {
    for (std::size_t i = 0; i < outputs_.size(); ++i)
      if (outputs_[i] == name) return i;
    throw Error("hepml: the model has no output '" + name + "' (" + join(outputs_) + ")");
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }

  std::size_t run_single(const float* x, std::size_t n, std::size_t batch, std::size_t output,
                         float* out, std::size_t out_n) const {
    if (inputs_.size() != 1)
      throw Error("hepml: the model takes " + std::to_string(inputs_.size()) + " inputs (" +
                  join(inputs_) + "); pass them by name");
    std::size_t w = input_sizes_[0];
    if (w == 0 || n != batch * w)
      throw Error("hepml: input '" + inputs_[0] + "': " + std::to_string(n) + " values for " +
                  std::to_string(batch) + " event(s), the model takes " + std::to_string(w) +
                  " per event");
    int64_t shape[2] = {static_cast<int64_t>(batch), static_cast<int64_t>(w)};
    const int64_t* shapes[1] = {shape};
    std::size_t rank = 2, len = 0;
    char* err = nullptr;
    int rc = hepml_run(m_, 1, nullptr, &x, shapes, &rank, output, out, out_n, &len, &err);
    if (rc == 1) throw_message(err);
    if (rc == 2)
      throw Error("hepml: output '" + outputs_[output] + "' has " + std::to_string(len) +
                  " values, room for " + std::to_string(out_n));
    return len;
  }

  hepml_model* m_ = nullptr;
  std::vector<std::string> inputs_, outputs_;
  std::vector<std::size_t> input_sizes_, output_sizes_;
  std::size_t default_output_ = 0;
};

/// A k-fold ensemble as `hepml export` writes it (NAME.fold0.onnx ... NAME.fold<k-1>.onnx):
/// each event is scored by the fold that did not train on it, fold_of(event) = event mod k
/// (non-negative), the routing `hepml inject` applies by the event-number branch (branch()).
///
///   auto f = hepml::Folds::exported("bdt.onnx");            // opens bdt.fold<i>.onnx
///   float s = f.score(event_number, {a0, a1, a2, m5});      // one event, its fold's score
///   std::vector<float> b = f.evaluate_batch(events, xs);    // a batch, each row routed
class Folds {
public:
  /// The members in fold order; each one's metadata (when it has hepml.fold) must agree.
  explicit Folds(const std::vector<std::string>& paths, const std::string& engine = "auto") {
    if (paths.size() < 2)
      throw Error("hepml::Folds: " + std::to_string(paths.size()) +
                  " model(s); a k-fold ensemble has at least 2");
    for (std::size_t i = 0; i < paths.size(); ++i) {
      models_.emplace_back(paths[i], engine);
      const hepml_model* h = models_.back().handle();
      std::size_t k = hepml_fold_k(h), idx = hepml_fold_index(h);
      if (k != 0 && k != paths.size())
        throw Error("hepml::Folds: " + paths[i] + " is a member of " + std::to_string(k) +
                    " folds, " + std::to_string(paths.size()) + " files given");
      if (idx != static_cast<std::size_t>(-1) && idx != i)
        throw Error("hepml::Folds: " + paths[i] + " is fold " + std::to_string(idx) +
                    ", given as fold " + std::to_string(i) + " (give the folds in order)");
      const char* b = hepml_fold_branch(h);
      if (b && branch_.empty()) branch_ = b;
    }
  }

  /// `path` as given to `hepml export -o`: opens the NAME.fold<i>.onnx files beside it, k
  /// from fold 0's metadata.
  static Folds exported(const std::string& path, const std::string& engine = "auto") {
    std::size_t slash = path.find_last_of('/');
    std::size_t dot = path.find_last_of('.');
    std::string stem =
        (dot != std::string::npos && (slash == std::string::npos || dot > slash))
            ? path.substr(0, dot)
            : path;
    auto member = [&](std::size_t i) { return stem + ".fold" + std::to_string(i) + ".onnx"; };
    std::size_t k = hepml_fold_k(Model(member(0), engine).handle());
    if (k == 0)
      throw Error("hepml::Folds: " + member(0) + " is not a fold of a k-fold export");
    std::vector<std::string> paths;
    for (std::size_t i = 0; i < k; ++i) paths.push_back(member(i));
    return Folds(paths, engine);
  }

  std::size_t k() const { return models_.size(); }
  /// The branch holding the event number (empty when the metadata names none).
  const std::string& branch() const { return branch_; }
  /// The fold that scores event number `event`.
  std::size_t fold_of(int64_t event) const { return hepml_fold_of(event, models_.size()); }
  const Model& fold(std::size_t i) const { return models_.at(i); }
  const Model& model_for(int64_t event) const { return models_[fold_of(event)]; }

  /// One event: its fold's score (see Model::score).
  float score(int64_t event, const float* x, std::size_t n) const {
    return model_for(event).score(x, n);
  }
  float score(int64_t event, const std::vector<float>& x) const {
    return score(event, x.data(), x.size());
  }

  /// `events.size()` events, row-major (`x.size() == events.size() * input_size`), each
  /// scored by its own fold: the default output, in the events' order.
  std::vector<float> evaluate_batch(const std::vector<int64_t>& events,
                                    const std::vector<float>& x) const {
    std::size_t n = events.size();
    if (n == 0) return {};
    if (x.size() % n != 0)
      throw Error("hepml::Folds: " + std::to_string(x.size()) + " values for " +
                  std::to_string(n) + " events");
    std::size_t w = x.size() / n;
    std::vector<std::vector<std::size_t>> rows(models_.size());
    for (std::size_t r = 0; r < n; ++r) rows[fold_of(events[r])].push_back(r);
    std::vector<float> out;
    std::size_t per = 0;
    for (std::size_t f = 0; f < models_.size(); ++f) {
      if (rows[f].empty()) continue;
      std::vector<float> in;
      in.reserve(rows[f].size() * w);
      for (std::size_t r : rows[f]) in.insert(in.end(), x.begin() + r * w, x.begin() + (r + 1) * w);
      std::vector<float> got = models_[f].evaluate_batch(in, rows[f].size());
      std::size_t p = got.size() / rows[f].size();
      if (out.empty()) {
        per = p;
        out.resize(n * per);
      } else if (p != per) {
        throw Error("hepml::Folds: fold " + std::to_string(f) + " gives " + std::to_string(p) +
                    " values per event, another fold " + std::to_string(per));
      }
      for (std::size_t j = 0; j < rows[f].size(); ++j)
        std::copy(got.begin() + j * per, got.begin() + (j + 1) * per,
                  out.begin() + rows[f][j] * per);
    }
    return out;
  }

private:
  std::vector<Model> models_;
  std::string branch_;
};

}  // namespace hepml

#endif
