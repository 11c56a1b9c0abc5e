// C ABI over libtorch's AOTInductor package loader
// (`torch::inductor::AOTIModelPackageLoader`), for `src/infer/aoti.rs`.
//
// tch 0.26 has no API for `.pt2` packages; libtorch_cpu.so exports the loader and
// ships its header. Every entry point catches every C++ exception and returns it
// as a malloc'd message (freed with `scorch_aoti_free_string`): no exception ever
// crosses into Rust. Tensors cross as tch does it: an `at::Tensor*` owned by the
// side that allocated it with `new` (tch frees its tensors with `delete`).

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace {

char* dup(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
  }
  return out;
}

// Runs `f`; on a C++ exception stores its message in `*err` and returns false.
template <typename F>
bool guarded(char** err, F&& f) {
  try {
    f();
    return true;
  } catch (const c10::Error& e) {
    *err = dup(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = dup(e.what());
  } catch (...) {
    *err = dup("unknown C++ exception");
  }
  return false;
}

}  // namespace

extern "C" {

void scorch_aoti_free_string(char* s) { std::free(s); }

// The package's metadata as "key=value" lines (AOTI_DEVICE_KEY, AOTI_CPU_ISA, …),
// read without loading its compiled library. NULL and `*err` on failure.
char* scorch_aoti_metadata(const char* path, const char* model_name, char** err) {
  std::string out;
  bool ok = guarded(err, [&] {
    auto meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(
        path, model_name);
    for (const auto& kv : meta) {
      out += kv.first;
      out += '=';
      out += kv.second;
      out += '\n';
    }
  });
  return ok ? dup(out) : nullptr;
}

// Loads a package: unpacks it to a temporary folder and dlopens its library.
// `num_runners` model instances serve concurrent `run` calls.
void* scorch_aoti_load(const char* path, const char* model_name, size_t num_runners,
                       int device_index, char** err) {
  torch::inductor::AOTIModelPackageLoader* loader = nullptr;
  guarded(err, [&] {
    loader = new torch::inductor::AOTIModelPackageLoader(
        path, model_name, /*run_single_threaded=*/false, num_runners,
        static_cast<c10::DeviceIndex>(device_index));
  });
  return loader;
}

void scorch_aoti_free(void* loader) {
  delete static_cast<torch::inductor::AOTIModelPackageLoader*>(loader);
}

// Runs the model on `n_inputs` tensors (borrowed `at::Tensor*`). On success the
// outputs are `*n_outputs` new `at::Tensor*` in a malloc'd array the caller owns
// (each tensor freed by tch's `Tensor` drop, the array with `free`). `quiet` mutes
// `std::cerr` for the call: the package's runtime prints every error there before
// returning it, and the caller reports it anyway. `std::cerr` is process-wide, so
// `quiet` is only for calls no other thread makes at the same time.
bool scorch_aoti_run(void* loader, void* const* inputs, size_t n_inputs, void*** outputs,
                     size_t* n_outputs, bool quiet, char** err) {
  *outputs = nullptr;
  *n_outputs = 0;
  struct Mute {
    bool on;
    std::ios::iostate saved;
    explicit Mute(bool on) : on(on), saved(std::cerr.rdstate()) {
      if (on) std::cerr.setstate(std::ios::failbit);
    }
    ~Mute() {
      if (on) std::cerr.clear(saved);
    }
  } mute(quiet);
  return guarded(err, [&] {
    std::vector<at::Tensor> in;
    in.reserve(n_inputs);
    for (size_t i = 0; i < n_inputs; ++i) {
      in.push_back(*static_cast<at::Tensor*>(inputs[i]));
    }
    auto out = static_cast<torch::inductor::AOTIModelPackageLoader*>(loader)->run(in);
    void** arr = static_cast<void**>(std::malloc(sizeof(void*) * (out.empty() ? 1 : out.size())));
    if (arr == nullptr) {
      throw std::bad_alloc();
    }
    for (size_t i = 0; i < out.size(); ++i) {
      arr[i] = new at::Tensor(std::move(out[i]));
    }
    *outputs = arr;
    *n_outputs = out.size();
  });
}

}  // extern "C"
