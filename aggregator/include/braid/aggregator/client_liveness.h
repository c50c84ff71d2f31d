// Which workers are alive: join, heartbeat, lost after the heartbeat
// timeout, join again. The round engine samples rounds from the live set.
#ifndef BRAID_AGGREGATOR_CLIENT_LIVENESS_H_
#define BRAID_AGGREGATOR_CLIENT_LIVENESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"

namespace braid::aggregator {

// Thread-compatible: the round engine calls it under its mutex.
class ClientLiveness {
 public:
  struct Client {
    std::string tenant;
    int replica = 0;
    int64_t num_examples = 0;
    absl::Time last_seen;
    bool lost = false;
  };

  // `clock` (not owned, must outlive this) gives the heartbeat times.
  ClientLiveness(Clock* clock, absl::Duration heartbeat_timeout);
  ClientLiveness(const ClientLiveness&) = delete;
  ClientLiveness& operator=(const ClientLiveness&) = delete;

  // Registers a worker (tenant, replica), seen now, and returns its new
  // client id "<tenant>/<replica>#<n>" (n counts joins, so ids are never
  // reused). One live session per worker: a worker that joins again
  // replaces its earlier session, which is declared lost at once (a worker
  // restarted after a crash comes back without waiting for the heartbeat
  // timeout; only its own tenant can do this under mTLS). The replaced
  // sessions' records are forgotten unless `keep` says the round still
  // refers to them, so the records stay O(workers) however often a worker
  // joins: a forgotten id is unknown (NotFound) like any other.
  std::string Join(const std::string& tenant, int replica, int64_t num_examples,
                   const std::function<bool(const std::string& id)>& keep = nullptr);

  // Marks the client seen now. NotFound (join again) if the id is unknown
  // or was declared lost.
  absl::Status Heartbeat(const std::string& client_id);

  // The client whatever its state, or null if the id was never issued.
  const Client* Find(const std::string& client_id) const;
  // Whether the id is known and not declared lost.
  bool IsLive(const std::string& client_id) const;

  // Declares lost every live client not seen for longer than the heartbeat
  // timeout; returns their ids, in id order.
  std::vector<std::string> MarkLost();

  int LiveCount() const;
  // Distinct tenants with a live client.
  int LiveTenants() const;
  // Records held (live, lost, replaced but kept); for tests of the bound.
  int Records() const { return static_cast<int>(clients_.size()); }
  // The live clients' ids, in id order.
  std::vector<std::string> LiveIds() const;
  // Workers (tenant, replica) declared lost that have not joined again.
  int LostWorkers() const;

 private:
  Clock* const clock_;
  const absl::Duration heartbeat_timeout_;
  std::map<std::string, Client> clients_;
  int64_t joins_ = 0;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_CLIENT_LIVENESS_H_
