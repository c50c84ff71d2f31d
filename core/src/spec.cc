// Public entry points of the job-spec parser and the job file I/O. Loading
// the text is in spec_load.cc, decoding the document in spec_decode.cc and
// spec_tenants.cc.
#include "braid/core/spec.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "spec_decode.h"
#include "spec_load.h"
#include "spec_yaml.h"

namespace braid::spec {
namespace {

using internal::Errors;
using internal::kFilePath;

// Runs every check on `yaml`; *job is valid when the result is empty.
std::vector<FieldError> Parse(std::string_view yaml, std::string_view base_dir,
                              const ParseOptions& options, JobSpec* job) {
  Errors errors;
  job->base_dir = std::string(base_dir);
  job->namespace_ = "default";
  if (yaml.size() > kMaxJobBytes) {
    errors.Add(kFilePath, absl::StrCat("is ", yaml.size(), " bytes; a job file is at most ",
                                       kMaxJobBytes, " bytes (1 MiB)"));
    return std::move(errors).Take();
  }
  std::optional<YAML::Node> root = internal::LoadJobDocument(yaml, &errors);
  if (!root.has_value()) return std::move(errors).Take();
  try {
    internal::DecodeJob(*root, options, job, &errors);
  } catch (const std::exception& e) {
    // Not expected: the decoder only asks yaml-cpp what it holds. Kept as an
    // error rather than a crash in every consumer.
    errors.Add(kFilePath, std::string("cannot read the YAML: ") + e.what());
  }
  return std::move(errors).Take();
}

std::string Join(const std::vector<FieldError>& errors) {
  std::string out;
  for (const FieldError& error : errors) {
    if (!out.empty()) out += '\n';
    out += error.ToString();
  }
  return out;
}

}  // namespace

bool IsRobustAggregation(const std::string& name) {
  return name == "median" || name == "trimmedmean" || name == "krum" || name == "multikrum" ||
         name == "bulyan";
}

int JobSpec::TotalReplicas() const {
  int total = 0;
  for (const Tenant& tenant : tenants) total += tenant.replicas;
  return total;
}

std::string ResolvedPath(const JobSpec& job, const std::string& path) {
  if (path.empty() || job.base_dir.empty()) return path;
  std::filesystem::path p(path);
  if (p.is_absolute()) return path;
  return (std::filesystem::path(job.base_dir) / p).lexically_normal().string();
}

absl::StatusOr<JobSpec> ParseJobYaml(std::string_view yaml, std::string_view base_dir,
                                     const ParseOptions& options) {
  JobSpec job;
  std::vector<FieldError> errors = Parse(yaml, base_dir, options, &job);
  if (!errors.empty()) return absl::InvalidArgumentError(Join(errors));
  return job;
}

std::vector<FieldError> ValidateJobYaml(std::string_view yaml, std::string_view base_dir,
                                        const ParseOptions& options) {
  JobSpec job;
  return Parse(yaml, base_dir, options, &job);
}

absl::StatusOr<JobSpec> ParseJobFile(const std::string& file, const ParseOptions& options) {
  namespace fs = std::filesystem;
  if (file.empty()) return absl::InvalidArgumentError("no job file given");
  std::error_code ec;
  const fs::file_status status = fs::status(file, ec);
  if (status.type() == fs::file_type::not_found) {
    return absl::NotFoundError("job file not found: " + file);
  }
  if (ec) return absl::InvalidArgumentError("cannot read job file " + file + ": " + ec.message());
  if (status.type() == fs::file_type::directory) {
    return absl::InvalidArgumentError("job file " + file + " is a directory");
  }
  std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (in == nullptr) {
    return absl::InvalidArgumentError("cannot read job file " + file + ": " +
                                      std::generic_category().message(errno));
  }
  // One byte more than allowed tells "too big" without reading the rest.
  std::string text(kMaxJobBytes + 1, '\0');
  size_t size = 0;
  while (size < text.size()) {
    size_t got = std::fread(text.data() + size, 1, text.size() - size, in.get());
    if (got == 0) break;
    size += got;
  }
  if (std::ferror(in.get())) {
    return absl::InvalidArgumentError("cannot read job file " + file + ": " +
                                      std::generic_category().message(errno));
  }
  if (size > kMaxJobBytes) {
    return absl::InvalidArgumentError(absl::StrCat("job file ", file, " is larger than ",
                                                   kMaxJobBytes, " bytes (1 MiB)"));
  }
  text.resize(size);
  fs::path absolute = fs::absolute(fs::path(file), ec);
  if (ec) absolute = fs::path(file);
  const std::string base_dir = absolute.lexically_normal().parent_path().string();
  return ParseJobYaml(text, base_dir, options);
}

}  // namespace braid::spec
