// A TCP forwarder on 127.0.0.1 for tests that break connections on
// purpose: everything accepted is piped to `upstream`; CutAll() closes every
// open connection at once (as a dropped network or a restarted load
// balancer would), and while refusing, new connections are closed on
// accept. CutAfter() cuts them all once a given number of bytes has passed
// one way (a link that drops in the middle of a transfer); the bytes each
// way are counted. TLS passes through untouched. Optionally it shapes the
// link like
// a WAN: each byte is delivered `latency` after it was read (per
// direction, so a round trip costs twice that) and no faster than
// `bytes_per_second` per direction of each connection.
#ifndef BRAID_TESTS_K8S_TCP_PROXY_H_
#define BRAID_TESTS_K8S_TCP_PROXY_H_

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace braid::k8s {

// How a shaped link delays and throttles; the zero value shapes nothing.
struct LinkShape {
  absl::Duration latency = absl::ZeroDuration();  // one way, added to every byte
  int64_t bytes_per_second = 0;                   // per direction and connection; 0: unlimited
};

class TcpProxy {
 public:
  enum class Direction { kUp, kDown };  // client -> upstream, upstream -> client

  // Forwards to upstream_host:upstream_port; listens on a free port.
  TcpProxy(std::string upstream_host, int upstream_port, LinkShape shape = {});
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  // Closes every open connection; returns how many there were.
  int CutAll();
  void SetRefusing(bool refusing) { refusing_ = refusing; }
  // Once `bytes` in all (over every connection) have been read going
  // `direction`, every open connection is cut, once; the read that crosses
  // the mark is not forwarded. Unshaped links only.
  void CutAfter(uint64_t bytes, Direction direction) {
    cut_direction_ = direction;
    cut_at_ = bytes;
  }
  bool cut() const { return cut_done_; }
  // Bytes read from the clients (up) and from the upstream (down), over
  // every unshaped connection.
  uint64_t bytes_up() const { return bytes_up_; }
  uint64_t bytes_down() const { return bytes_down_; }
  // The shape of connections accepted from now on (open ones keep theirs).
  void SetShape(LinkShape shape) {
    absl::MutexLock lock(&mu_);
    shape_ = shape;
  }

 private:
  void AcceptLoop();
  void Pipe(int from, int to);
  // Pipe's shaped form: one pump per direction.
  void ShapedPipe(int a, int b, LinkShape shape);
  void Pump(int from, int to, LinkShape shape);

  const std::string upstream_host_;
  const int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> refusing_{false};
  std::atomic<Direction> cut_direction_{Direction::kUp};
  std::atomic<uint64_t> cut_at_{UINT64_MAX};
  std::atomic<bool> cut_done_{false};
  std::atomic<uint64_t> bytes_up_{0};
  std::atomic<uint64_t> bytes_down_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::set<int> open_ ABSL_GUARDED_BY(mu_);
  LinkShape shape_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pipes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::k8s

#endif  // BRAID_TESTS_K8S_TCP_PROXY_H_
