#include "braid/aggregator/client_liveness.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace braid::aggregator {

ClientLiveness::ClientLiveness(Clock* clock, absl::Duration heartbeat_timeout)
    : clock_(clock), heartbeat_timeout_(heartbeat_timeout) {}

std::string ClientLiveness::Join(const std::string& tenant, int replica, int64_t num_examples,
                                 const std::function<bool(const std::string& id)>& keep) {
  for (auto it = clients_.begin(); it != clients_.end();) {
    Client& c = it->second;
    if (c.tenant != tenant || c.replica != replica) {
      ++it;
      continue;
    }
    c.lost = true;
    if (keep && keep(it->first)) {
      ++it;
    } else {
      it = clients_.erase(it);
    }
  }
  const std::string id = absl::StrCat(tenant, "/", replica, "#", ++joins_);
  clients_[id] = Client{tenant, replica, num_examples, clock_->Now(), false};
  return id;
}

absl::Status ClientLiveness::Heartbeat(const std::string& client_id) {
  auto it = clients_.find(client_id);
  if (it == clients_.end() || it->second.lost) {
    return absl::NotFoundError(absl::StrCat("unknown client ", client_id,
                                            " (the aggregator restarted or declared it lost); "
                                            "join again"));
  }
  it->second.last_seen = clock_->Now();
  return absl::OkStatus();
}

const ClientLiveness::Client* ClientLiveness::Find(const std::string& client_id) const {
  auto it = clients_.find(client_id);
  return it == clients_.end() ? nullptr : &it->second;
}

bool ClientLiveness::IsLive(const std::string& client_id) const {
  const Client* c = Find(client_id);
  return c != nullptr && !c->lost;
}

std::vector<std::string> ClientLiveness::MarkLost() {
  const absl::Time now = clock_->Now();
  std::vector<std::string> lost;
  for (auto& [id, c] : clients_) {
    if (!c.lost && now - c.last_seen > heartbeat_timeout_) {
      c.lost = true;
      lost.push_back(id);
    }
  }
  return lost;
}

int ClientLiveness::LiveCount() const {
  int n = 0;
  for (const auto& [id, c] : clients_) n += c.lost ? 0 : 1;
  return n;
}

int ClientLiveness::LiveTenants() const {
  std::set<std::string> tenants;
  for (const auto& [id, c] : clients_) {
    if (!c.lost) tenants.insert(c.tenant);
  }
  return static_cast<int>(tenants.size());
}

std::vector<std::string> ClientLiveness::LiveIds() const {
  std::vector<std::string> ids;
  for (const auto& [id, c] : clients_) {
    if (!c.lost) ids.push_back(id);
  }
  return ids;
}

int ClientLiveness::LostWorkers() const {
  std::set<std::pair<std::string, int>> live, lost;
  for (const auto& [id, c] : clients_) (c.lost ? lost : live).insert({c.tenant, c.replica});
  int gone = 0;
  for (const auto& worker : lost) gone += live.count(worker) ? 0 : 1;
  return gone;
}

}  // namespace braid::aggregator
