#include "reference_support.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "braid/core/safetensors.h"

namespace braid::reference {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string RunCommand(const std::string& command, const fs::path& scratch) {
  const fs::path out = scratch / "cmd.out", err = scratch / "cmd.err";
  const std::string full = command + " >" + out.string() + " 2>" + err.string();
  const int rc = std::system(full.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "reference command failed (status " << rc << "): " << command
                  << "\n--- stderr ---\n"
                  << Slurp(err) << "\n--- stdout ---\n"
                  << Slurp(out);
    return "";
  }
  std::string text = Slurp(out);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string ReferencePython(const fs::path& scratch) {
  const std::string python =
      RunCommand("bash " + std::string(BRAID_SOURCE_DIR) + "/scripts/pyref.sh", scratch);
  if (python.empty()) {
    ADD_FAILURE() << "the Python reference stack (scripts/pyref.sh: transformers, peft over "
                     "Debian's python3-torch) is not available; run `make pyref`";
  }
  return python;
}

std::map<std::string, torch::Tensor> ReadTensors(const fs::path& path) {
  auto file = safetensors::Read(path.string());
  EXPECT_TRUE(file.ok()) << file.status();
  std::map<std::string, torch::Tensor> out;
  if (!file.ok()) return out;
  for (const Tensor& t : file->tensors) {
    EXPECT_TRUE(t.dtype == DType::kI64 || t.dtype == DType::kF32) << path << ": " << t.name;
    const torch::ScalarType type = t.dtype == DType::kI64 ? torch::kLong : torch::kFloat;
    out[t.name] = torch::from_blob(const_cast<uint8_t*>(t.data.data()), t.shape, type).clone();
  }
  return out;
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return INFINITY;
  return (a - b).abs().max().item<double>();
}

}  // namespace braid::reference
