#include "tests/k8s/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <string>
#include <utility>

namespace braid::k8s {

TcpProxy::TcpProxy(std::string upstream_host, int upstream_port, LinkShape shape)
    : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port), shape_(shape) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  acceptor_.join();
  CutAll();
  std::vector<std::thread> pipes;
  {
    absl::MutexLock lock(&mu_);
    pipes.swap(pipes_);
  }
  for (std::thread& t : pipes) t.join();
}

int TcpProxy::CutAll() {
  absl::MutexLock lock(&mu_);
  const int n = static_cast<int>(open_.size()) / 2;
  for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  open_.clear();
  return n;
}

void TcpProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int client = ::accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    if (refusing_) {
      ::close(client);
      continue;
    }
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(upstream_port_);
    ::inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr);
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(client);
      ::close(upstream);
      continue;
    }
    absl::MutexLock lock(&mu_);
    open_.insert(client);
    open_.insert(upstream);
    const LinkShape shape = shape_;
    const bool shaped = shape.latency > absl::ZeroDuration() || shape.bytes_per_second > 0;
    pipes_.emplace_back([this, client, upstream, shaped, shape] {
      shaped ? ShapedPipe(client, upstream, shape) : Pipe(client, upstream);
    });
  }
}

// Copies both ways until either side closes, then closes both.
void TcpProxy::Pipe(int a, int b) {
  char buf[64 * 1024];
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  bool open = true;
  while (open && !stopping_) {
    if (::poll(fds, 2, 200) < 0) break;
    for (int i = 0; i < 2 && open; ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        open = false;
        break;
      }
      const Direction direction = i == 0 ? Direction::kUp : Direction::kDown;
      const uint64_t total =
          (direction == Direction::kUp ? bytes_up_ : bytes_down_) += static_cast<uint64_t>(n);
      if (direction == cut_direction_ && total >= cut_at_ && !cut_done_.exchange(true)) {
        CutAll();
        open = false;
        break;
      }
      ssize_t sent = 0;
      while (sent < n) {
        // MSG_NOSIGNAL: a peer that already closed (the proxy breaking
        // connections on purpose) is an error here, not a SIGPIPE that kills
        // the test process.
        const ssize_t w = ::send(fds[1 - i].fd, buf + sent, n - sent, MSG_NOSIGNAL);
        if (w <= 0) {
          open = false;
          break;
        }
        sent += w;
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    open_.erase(a);
    open_.erase(b);
  }
  ::close(a);
  ::close(b);
}

// Both directions pumped until either ends (or CutAll), then both closed.
void TcpProxy::ShapedPipe(int a, int b, LinkShape shape) {
  std::thread back([this, a, b, shape] { Pump(b, a, shape); });
  Pump(a, b, shape);
  back.join();
  {
    absl::MutexLock lock(&mu_);
    open_.erase(a);
    open_.erase(b);
  }
  ::close(a);
  ::close(b);
}

// One direction of a shaped link: a reader stamps each chunk with when it
// may arrive (now + latency); this thread delivers chunks at that time, no
// faster than the byte rate allows. When either side ends, both sockets
// are shut down so the other direction's pump ends too.
void TcpProxy::Pump(int from, int to, LinkShape shape) {
  struct Chunk {
    absl::Time due;
    std::string bytes;  // empty: the end
  };
  absl::Mutex mu;
  std::deque<Chunk> queue;  // guarded by mu
  std::thread reader([&] {
    char buf[16 * 1024];
    for (;;) {
      pollfd p{from, POLLIN, 0};
      const int ready = ::poll(&p, 1, 200);
      if (stopping_) break;
      if (ready < 0) break;
      if (ready == 0) continue;
      const ssize_t n = ::read(from, buf, sizeof(buf));
      if (n <= 0) break;
      absl::MutexLock lock(&mu);
      queue.push_back({absl::Now() + shape.latency, std::string(buf, n)});
    }
    absl::MutexLock lock(&mu);
    queue.push_back({absl::Now(), ""});
  });
  // The link is busy until `free_at`; a slice of bytes occupies it for
  // size / rate.
  absl::Time free_at = absl::Now();
  constexpr size_t kSlice = 4096;
  for (bool open = true; open;) {
    Chunk chunk;
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(+[](std::deque<Chunk>* q) { return !q->empty(); }, &queue));
      chunk = std::move(queue.front());
      queue.pop_front();
    }
    if (chunk.bytes.empty()) break;
    // Shaping is this proxy's job: waiting here is the delay it adds.
    absl::SleepFor(chunk.due - absl::Now());
    for (size_t at = 0; at < chunk.bytes.size() && open;) {
      const size_t n = std::min(kSlice, chunk.bytes.size() - at);
      if (shape.bytes_per_second > 0) {
        const absl::Time now = absl::Now();
        if (free_at > now) absl::SleepFor(free_at - now);
        free_at = std::max(free_at, now) +
                  absl::Seconds(static_cast<double>(n) / shape.bytes_per_second);
      }
      size_t sent = 0;
      while (sent < n) {
        const ssize_t w = ::send(to, chunk.bytes.data() + at + sent, n - sent, MSG_NOSIGNAL);
        if (w <= 0) {
          open = false;
          break;
        }
        sent += w;
      }
      at += n;
    }
  }
  ::shutdown(from, SHUT_RDWR);
  ::shutdown(to, SHUT_RDWR);
  reader.join();
}

}  // namespace braid::k8s
