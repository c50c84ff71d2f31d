#include "braid/aggregator/secagg_round.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "braid/core/secagg/messages.h"
#include "braid/core/status_macros.h"

namespace braid::aggregator {

const char* SecAggStageName(SecAggStage stage) {
  switch (stage) {
    case SecAggStage::kAdvertise: return "AdvertiseKeys";
    case SecAggStage::kShare: return "ShareKeys";
    case SecAggStage::kMaskedInput: return "MaskedInput";
    case SecAggStage::kUnmask: return "Unmasking";
    case SecAggStage::kDone: return "Done";
  }
  return "?";
}

CohortShape ShapeFor(const SecAggOptions& options, uint32_t n) {
  CohortShape shape;
  uint32_t k = 0;
  if (options.neighbours > 0) {
    k = static_cast<uint32_t>(options.neighbours);
  } else if (options.neighbours < 0 && n > kAutoCompleteUpTo) {
    k = 2 * static_cast<uint32_t>(std::ceil(std::log2(static_cast<double>(n))));
    k += k % 2;
  }
  if (k + 1 >= n) k = 0;  // a graph that dense is the complete graph
  shape.neighbours = k;
  const uint32_t holders = k == 0 ? n : k + 1;
  uint32_t t = options.threshold > 0
                   ? static_cast<uint32_t>(std::ceil(options.threshold * holders - 1e-9))
                   : holders / 2 + 1;
  shape.threshold = std::min(holders, std::max<uint32_t>(2, t));
  return shape;
}

SecAggRound::SecAggRound(const SecAggOptions& options, secagg::RoundConfig config,
                         std::unique_ptr<secagg::Server> server, double noise_stddev)
    : options_(options),
      config_(std::move(config)),
      server_(std::move(server)),
      noise_stddev_(noise_stddev) {}

absl::StatusOr<std::unique_ptr<SecAggRound>> SecAggRound::Create(
    const SecAggOptions& options, uint64_t round_id, uint64_t graph_seed, uint64_t vector_length,
    const std::vector<Member>& members, double noise_stddev, absl::Time now,
    absl::Duration input_timeout, int unmask_threads) {
  if (members.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secure aggregation needs at least 2 clients in a round, the round has ",
        members.size()));
  }
  const CohortShape shape = ShapeFor(options, static_cast<uint32_t>(members.size()));
  secagg::RoundConfig config;
  config.round_id = round_id;
  config.threshold = shape.threshold;
  config.neighbours = shape.neighbours;
  config.graph_seed = graph_seed;
  config.vector_length = vector_length;
  config.quantization.clip = options.quantization_range;
  config.quantization.max_summands = static_cast<uint32_t>(members.size());
  config.quantization.rounding = secagg::Rounding::kNearest;
  for (size_t i = 0; i < members.size(); ++i) {
    config.clients.push_back(static_cast<secagg::ClientId>(i + 1));
  }
  secagg::ServerOptions server_options;
  server_options.unmask_threads = std::max(1, unmask_threads);
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<secagg::Server> server,
                         secagg::Server::Create(config, server_options));
  std::unique_ptr<SecAggRound> round(
      new SecAggRound(options, config, std::move(server), noise_stddev));
  round->input_timeout_ = input_timeout;
  for (size_t i = 0; i < members.size(); ++i) {
    const auto id = static_cast<secagg::ClientId>(i + 1);
    round->ids_[members[i].client_id] = id;
    round->names_[id] = members[i].client_id;
    round->weights_[members[i].client_id] = members[i].weight;
    round->expected_.insert(members[i].client_id);
  }
  round->deadline_ = now + options.stage_timeout;
  return round;
}

std::optional<SecAggTask> SecAggRound::TaskFor(const std::string& client_id) const {
  auto it = ids_.find(client_id);
  if (it == ids_.end()) return std::nullopt;
  SecAggTask task;
  task.config = config_;
  task.self = it->second;
  task.weight = weights_.at(client_id);
  task.noise_stddev = noise_stddev_;
  task.stage_timeout = options_.stage_timeout;
  return task;
}

absl::Status SecAggRound::Submit(const std::string& client_id, SecAggStage stage,
                                 absl::string_view payload) {
  if (stage != stage_ || !expected_.count(client_id) || excluded_.count(client_id)) {
    return absl::AbortedError(absl::StrCat(
        "secure aggregation: ", client_id, " sent its ", SecAggStageName(stage),
        " message while the round is at ", SecAggStageName(stage_),
        " without it; it is out of this round"));
  }
  if (done_.count(client_id)) {
    return absl::InvalidArgumentError(absl::StrCat("secure aggregation: ", client_id, " sent its ",
                                                   SecAggStageName(stage), " message twice"));
  }
  const secagg::ClientId id = ids_.at(client_id);
  // Every message must come from the cohort id of the caller's connection:
  // a client cannot speak for another.
  auto from_self = [&](secagg::ClientId from) -> absl::Status {
    if (from != id) {
      return absl::InvalidArgumentError(absl::StrCat("secure aggregation: ", client_id,
                                                     " sent a message signed as client ", from));
    }
    return absl::OkStatus();
  };
  switch (stage) {
    case SecAggStage::kAdvertise: {
      BRAID_ASSIGN_OR_RETURN(secagg::PublicKeys keys, secagg::DecodePublicKeys(payload));
      BRAID_RETURN_IF_ERROR(from_self(keys.id));
      BRAID_RETURN_IF_ERROR(server_->AddPublicKeys(keys));
      break;
    }
    case SecAggStage::kShare: {
      BRAID_ASSIGN_OR_RETURN(secagg::EncryptedShares shares,
                             secagg::DecodeEncryptedShares(payload));
      BRAID_RETURN_IF_ERROR(from_self(shares.from));
      BRAID_RETURN_IF_ERROR(server_->AddEncryptedShares(shares));
      break;
    }
    case SecAggStage::kUnmask: {
      BRAID_ASSIGN_OR_RETURN(secagg::UnmaskResponse response,
                             secagg::DecodeUnmaskResponse(payload));
      BRAID_RETURN_IF_ERROR(from_self(response.from));
      BRAID_RETURN_IF_ERROR(server_->AddUnmaskResponse(response));
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "secure aggregation: stage ", SecAggStageName(stage),
          " takes no message here (the masked input goes up with PutUpdate)"));
  }
  done_.insert(client_id);
  return absl::OkStatus();
}

bool SecAggRound::ExpectsMaskedInput(const std::string& client_id) const {
  return stage_ == SecAggStage::kMaskedInput && expected_.count(client_id) &&
         !done_.count(client_id) && !excluded_.count(client_id);
}

absl::Status SecAggRound::SubmitMaskedInput(const std::string& client_id, const void* values,
                                            size_t bytes) {
  BRAID_RETURN_IF_ERROR(ClaimMaskedInput(client_id));
  return AddMaskedInput(client_id, values, bytes);
}

absl::Status SecAggRound::ClaimMaskedInput(const std::string& client_id) {
  if (!ExpectsMaskedInput(client_id)) {
    return absl::AbortedError(absl::StrCat("secure aggregation: the round is at ",
                                           SecAggStageName(stage_), " and takes no masked input from ",
                                           client_id));
  }
  done_.insert(client_id);
  return absl::OkStatus();
}

absl::Status SecAggRound::AddMaskedInput(const std::string& client_id, const void* values,
                                         size_t bytes) {
  return server_->AddMaskedInput(ids_.at(client_id), values, bytes);
}

absl::StatusOr<std::optional<std::string>> SecAggRound::Answer(const std::string& client_id,
                                                               SecAggStage stage) const {
  if (static_cast<int>(stage_) <= static_cast<int>(stage)) return std::optional<std::string>();
  auto answers = answers_.find(stage);
  if (answers != answers_.end()) {
    auto it = answers->second.find(client_id);
    if (it != answers->second.end()) return std::optional<std::string>(it->second);
  }
  return absl::AbortedError(absl::StrCat("secure aggregation: ", client_id, " is out of the round: ",
                                         SecAggStageName(stage),
                                         " closed without its message in time"));
}

absl::Status SecAggRound::Advance(absl::Time now,
                                  const std::function<bool(const std::string&)>& gone) {
  if (stage_ == SecAggStage::kDone) return absl::OkStatus();
  bool all_in = true;
  for (const std::string& id : expected_) {
    if (!done_.count(id) && !excluded_.count(id) && !gone(id)) all_in = false;
  }
  if (!all_in && now < deadline_) return absl::OkStatus();
  return CloseStage(now);
}

absl::Status SecAggRound::CloseStage(absl::Time now) {
  const SecAggStage closing = stage_;
  std::map<std::string, std::string>& answers = answers_[closing];
  std::set<std::string> next;
  switch (closing) {
    case SecAggStage::kAdvertise: {
      BRAID_ASSIGN_OR_RETURN(auto directories, server_->CloseAdvertiseKeys());
      for (const auto& [id, dir] : directories) {
        answers[names_[id]] = secagg::Encode(dir);
        next.insert(names_[id]);
      }
      deadline_ = now + options_.stage_timeout;
      stage_ = SecAggStage::kShare;
      break;
    }
    case SecAggStage::kShare: {
      BRAID_ASSIGN_OR_RETURN(auto forwarded, server_->CloseShareKeys());
      for (const auto& [id, shares] : forwarded) {
        answers[names_[id]] = secagg::Encode(shares);
        next.insert(names_[id]);
      }
      deadline_ = now + input_timeout_;
      stage_ = SecAggStage::kMaskedInput;
      break;
    }
    case SecAggStage::kMaskedInput: {
      BRAID_ASSIGN_OR_RETURN(secagg::UnmaskRequest request, server_->CloseMaskedInput());
      const std::string encoded = secagg::Encode(request);
      for (secagg::ClientId id : request.survivors) {
        answers[names_[id]] = encoded;
        next.insert(names_[id]);
      }
      deadline_ = now + options_.stage_timeout;
      stage_ = SecAggStage::kUnmask;
      break;
    }
    case SecAggStage::kUnmask: {
      BRAID_ASSIGN_OR_RETURN(result_, server_->Finish());
      stage_ = SecAggStage::kDone;
      break;
    }
    case SecAggStage::kDone:
      return absl::OkStatus();
  }
  expected_ = std::move(next);
  for (const std::string& id : excluded_) expected_.erase(id);
  done_.clear();
  return absl::OkStatus();
}

std::vector<std::string> SecAggRound::contributors() const {
  std::vector<std::string> out;
  for (secagg::ClientId id : result_.contributors) out.push_back(names_.at(id));
  return out;
}

double SecAggRound::contributor_weight() const {
  double w = 0;
  for (secagg::ClientId id : result_.contributors) w += weights_.at(names_.at(id));
  return w;
}

}  // namespace braid::aggregator
