/* hepml C API (libhepml.so). C++ users include <hepml/hepml.hpp> instead.
 *
 * Every function is safe to call from many threads at once on one model. Strings returned as
 * `const char*` live as long as the model; strings returned through `char** error` are owned by
 * the caller and freed with hepml_free_string. */
#ifndef HEPML_H
#define HEPML_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hepml_model hepml_model;

/* engine: NULL or "auto" (tree ensembles and dense networks on hepml's native evaluators, other
 * graphs on ONNX Runtime when its library is found, else tract), "native", "tract", "trees",
 * "ort". NULL on failure, message in *error. hepml_describe names the engine and why. */
hepml_model* hepml_open(const char* path, const char* engine, char** error);
void hepml_close(hepml_model* m);
void hepml_free_string(char* s);

const char* hepml_describe(const hepml_model* m);
size_t hepml_num_inputs(const hepml_model* m);
const char* hepml_input_name(const hepml_model* m, size_t i);
size_t hepml_num_outputs(const hepml_model* m);
const char* hepml_output_name(const hepml_model* m, size_t i);
size_t hepml_default_output(const hepml_model* m);
/* Writes up to cap dimensions (batch first, -1 = symbolic) and returns the rank. */
size_t hepml_input_shape(const hepml_model* m, size_t i, int64_t* dims, size_t cap);
size_t hepml_output_shape(const hepml_model* m, size_t i, int64_t* dims, size_t cap);
/* The feature map from the model's hepml.inputs metadata: features of input i. */
size_t hepml_num_features(const hepml_model* m, size_t i);
const char* hepml_feature(const hepml_model* m, size_t i, size_t j);
size_t hepml_num_metadata(const hepml_model* m);
const char* hepml_metadata_key(const hepml_model* m, size_t i);
const char* hepml_metadata(const hepml_model* m, const char* key);

/* k-fold ensembles (hepml export's NAME.fold<i>.onnx, one model per fold): hepml_fold_k is the
 * k of the ensemble a model belongs to (0: not a member), hepml_fold_branch the branch holding
 * the event number (NULL: none), hepml_fold_index the model's fold (SIZE_MAX: unknown).
 * hepml_fold_of is the fold that scores an event, as hepml inject routes it: event mod k,
 * taken non-negative (0 when k is 0). */
size_t hepml_fold_k(const hepml_model* m);
const char* hepml_fold_branch(const hepml_model* m);
size_t hepml_fold_index(const hepml_model* m);
size_t hepml_fold_of(int64_t event, size_t k);

/* Evaluates a batch: n_inputs tensors (names NULL: graph order), shapes with the batch first.
 * Returns 0 (ok), 1 (error, message in *error), 2 (out_cap too small; *out_len = needed). */
int hepml_run(const hepml_model* m, size_t n_inputs, const char* const* names,
              const float* const* data, const int64_t* const* shapes, const size_t* ranks,
              size_t output, float* out, size_t out_cap, size_t* out_len, char** error);

#ifdef __cplusplus
}
#endif
#endif
