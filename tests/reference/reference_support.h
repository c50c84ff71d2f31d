// What the reference tests share: running the Python reference stack
// (scripts/pyref.sh's interpreter) and reading the tensors it writes.
// Failures are gtest failures with the command's stderr, never skips.
#ifndef BRAID_TESTS_REFERENCE_REFERENCE_SUPPORT_H_
#define BRAID_TESTS_REFERENCE_REFERENCE_SUPPORT_H_

#include <filesystem>
#include <map>
#include <string>

#include <torch/torch.h>

namespace braid::reference {

// The file's contents ("" if it cannot be read).
std::string Slurp(const std::filesystem::path& path);

// Runs `command` through the shell with stdout and stderr captured in
// `scratch`; returns stdout without trailing blanks. A non-zero exit is a
// test failure (ADD_FAILURE) printing the command, its stderr and stdout,
// and "" is returned.
std::string RunCommand(const std::string& command, const std::filesystem::path& scratch);

// The interpreter of the reference stack (bash scripts/pyref.sh); "" with a
// test failure saying why when it cannot be made.
std::string ReferencePython(const std::filesystem::path& scratch);

// Every tensor of a safetensors file (F32 or I64), by name; a test failure
// when the file cannot be read.
std::map<std::string, torch::Tensor> ReadTensors(const std::filesystem::path& path);

// max |a - b|; a test failure and infinity when the shapes differ.
double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace braid::reference

#endif  // BRAID_TESTS_REFERENCE_REFERENCE_SUPPORT_H_
