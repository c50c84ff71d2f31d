// Internal to the job-spec parser: from a loaded YAML document to a JobSpec.
#ifndef BRAID_CORE_SRC_SPEC_DECODE_H_
#define BRAID_CORE_SRC_SPEC_DECODE_H_

#include <yaml-cpp/yaml.h>

#include "braid/core/spec.h"
#include "spec_yaml.h"

namespace braid::spec::internal {

inline constexpr char kApiVersion[] = "braid.dev/v1alpha1";
inline constexpr char kKind[] = "FederatedJob";

// Decodes the document `root` into *job, which holds the defaults and
// job->base_dir on entry. Every problem is added to *errors; *job is only
// meaningful when none were. Reads known fields only and checks each list's
// length before indexing it, so the work is bounded whatever `root` holds.
void DecodeJob(const YAML::Node& root, const ParseOptions& options, JobSpec* job,
               Errors* errors);

// A Kubernetes-style name (DNS-1123 label) as a string; the error suggests
// a valid spelling ("St_Mary" -> "st-mary").
bool ReadName(const YAML::Node& node, const std::string& path, Errors* errors,
              std::string* out);

// spec.tenants: the list, each tenant, unique names and data sources.
// Returns true when every tenant's replica count is known, so that
// job->TotalReplicas() is meaningful for cross-field checks.
bool DecodeTenants(const YAML::Node& node, const std::string& path,
                   const ParseOptions& options, JobSpec* job, Errors* errors);

// What a DataSource's local path must name when files are checked.
enum class SourceKind { kFile, kDirectory };

// A DataSource map (`path` or `persistentVolumeClaim`); with
// options.check_files the local file (or directory) must exist and be
// readable.
void DecodeDataSource(const YAML::Node& node, const std::string& path,
                      const ParseOptions& options, const JobSpec& job, SourceKind kind,
                      DataSource* out, Errors* errors);

// spec.model into job->model (spec.model.base is resolved against
// job->base_dir). Returns whether job->model.kind is known (given and valid,
// or absent), so that spec.data can be checked against it.
bool DecodeModel(const YAML::Node& node, const ParseOptions& options, JobSpec* job,
                 Errors* errors);

}  // namespace braid::spec::internal

#endif  // BRAID_CORE_SRC_SPEC_DECODE_H_
