// A TCP forwarder on 127.0.0.1 for tests that break connections on
// purpose: everything accepted is piped to `upstream`; CutAll() closes every
// open connection at once (as a dropped network or a restarted load
// balancer would), and while refusing, new connections are closed on
// accept. TLS passes through untouched.
#ifndef BRAID_TESTS_K8S_TCP_PROXY_H_
#define BRAID_TESTS_K8S_TCP_PROXY_H_

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace braid::k8s {

class TcpProxy {
 public:
  // Forwards to upstream_host:upstream_port; listens on a free port.
  TcpProxy(std::string upstream_host, int upstream_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // Closes every open connection; returns how many there were.
  int CutAll();
  void SetRefusing(bool refusing) { refusing_ = refusing; }

 private:
  void AcceptLoop();
  void Pipe(int from, int to);

  const std::string upstream_host_;
  const int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> refusing_{false};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::set<int> open_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pipes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::k8s

#endif  // BRAID_TESTS_K8S_TCP_PROXY_H_
