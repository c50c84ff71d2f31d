#include "guarded_server.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace braid::dashboard {
namespace {

constexpr absl::Duration kPollSlice = absl::Milliseconds(100);  // how soon a stop is noticed

// The connection this thread serves (one thread per connection).
struct Connection {
  int fd = -1;
  bool head_done = false;    // the current request's line and headers are read
  bool close = false;        // a route asked to close after its response
};
thread_local Connection* t_connection = nullptr;

std::string Address(const sockaddr_storage& addr, socklen_t len, int* port) {
  char host[NI_MAXHOST] = {0};
  char serv[NI_MAXSERV] = {0};
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, serv,
                  sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    *port = -1;
    return "";
  }
  *port = std::atoi(serv);
  return host;
}

std::string Peer(int fd, int* port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  return Address(addr, len, port);
}

std::string Local(int fd, int* port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  return Address(addr, len, port);
}

// Waits until `fd` has `events` or `deadline` passes or `stopped()`.
template <typename Stopped>
bool WaitFor(int fd, short events, absl::Time deadline, Stopped stopped) {
  while (!stopped()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, events, 0};
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(std::min(left, kPollSlice))) + 1;
    const int r = ::poll(&p, 1, ms);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
  return false;
}

// A socket stream whose reads end at the connection's deadline and whose
// request head is bounded in bytes.
class DeadlineStream final : public httplib::Stream {
  // Whether the server stopped (its listening socket is closed).
  struct Stopped {
    const std::atomic<socket_t>* listening;
    bool operator()() const { return listening->load() == INVALID_SOCKET; }
  };

 public:
  DeadlineStream(int fd, Connection* c, const ConnectionLimits& limits,
                 const std::atomic<socket_t>* listening)
      : fd_(fd), c_(c), limits_(limits), listening_(listening) {}

  // Starts a request: it must be read (line, headers, body) by `deadline`.
  void StartRequest(absl::Time deadline) {
    deadline_ = deadline;
    head_bytes_ = 0;
    c_->head_done = false;
  }
  // Whether a next request has begun arriving within `timeout`.
  bool WaitForRequest(absl::Duration timeout) {
    return pos_ < len_ || WaitFor(fd_, POLLIN, absl::Now() + timeout, Stopped{listening_});
  }

  bool is_readable() const override {
    return pos_ < len_ || WaitFor(fd_, POLLIN, deadline_, Stopped{listening_});
  }
  bool is_writable() const override {
    return WaitFor(fd_, POLLOUT, absl::Now() + limits_.write_timeout, Stopped{listening_});
  }
  ssize_t read(char* ptr, size_t size) override {
    if (!c_->head_done && head_bytes_ >= limits_.max_head_bytes) return -1;  // headers too long
    if (pos_ == len_) {
      if (!is_readable()) return -1;  // the request is late (or the server stops)
      const ssize_t n = ::recv(fd_, buf_, sizeof buf_, 0);
      if (n <= 0) return n;
      pos_ = 0;
      len_ = static_cast<size_t>(n);
    }
    size_t n = std::min(size, len_ - pos_);
    if (!c_->head_done) n = std::min(n, limits_.max_head_bytes - head_bytes_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    if (!c_->head_done) head_bytes_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    return ::send(fd_, ptr, size, MSG_NOSIGNAL);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { ip = Peer(fd_, &port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { ip = Local(fd_, &port); }
  socket_t socket() const override { return fd_; }

 private:
  const int fd_;
  Connection* const c_;
  const ConnectionLimits& limits_;
  const std::atomic<socket_t>* const listening_;
  absl::Time deadline_ = absl::InfiniteFuture();
  size_t head_bytes_ = 0;
  char buf_[4096];
  size_t pos_ = 0, len_ = 0;
};

// Runs each accepted connection's task on the accepting thread: the task
// (GuardedServer::process_and_close_socket) admits it in accept order and
// starts its thread, or refuses it at once. shutdown() joins the
// connections' threads.
class AcceptThreadQueue final : public httplib::TaskQueue {
 public:
  explicit AcceptThreadQueue(std::function<void()> join_all) : join_all_(std::move(join_all)) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { join_all_(); }

 private:
  const std::function<void()> join_all_;
};

// A short answer for a connection that is not served, without waiting on
// the client; then the socket is closed.
void Refuse(int fd, const std::string& why) {
  const std::string body = absl::StrCat("{\"error\": \"", why, "\"}");
  const std::string out =
      absl::StrCat("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n",
                   "Retry-After: 1\r\nConnection: close\r\nContent-Length: ", body.size(),
                   "\r\n\r\n", body);
  (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Closes after telling the client: stop sending, then discard what it
// already sent (bounded), so that it reads our answer rather than a reset.
void CloseGracefully(int fd) {
  ::shutdown(fd, SHUT_WR);
  const absl::Time until = absl::Now() + absl::Milliseconds(500);
  char sink[4096];
  size_t drained = 0;
  while (drained < (1u << 20)) {
    if (!WaitFor(fd, POLLIN, until, [] { return false; })) break;
    const ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

GuardedServer::GuardedServer(const ConnectionLimits& limits) : limits_(limits) {
  new_task_queue = [this] { return new AcceptThreadQueue([this] { JoinAll(); }); };
}

GuardedServer::~GuardedServer() { JoinAll(); }

int GuardedServer::open_connections() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

std::string GuardedServer::Admit(const std::string& client) {
  absl::MutexLock lock(&mu_);
  if (open_ >= std::max(1, limits_.max_connections)) {
    return "too many connections to the dashboard; try again";
  }
  if (per_client_[client] >= std::max(1, limits_.max_connections_per_client)) {
    if (per_client_[client] == 0) per_client_.erase(client);
    return "too many connections from this address to the dashboard; try again";
  }
  ++per_client_[client];
  ++open_;
  return "";
}

// On the accepting thread: admit (in accept order) and start the
// connection's thread, or refuse it without waiting on the client.
bool GuardedServer::process_and_close_socket(socket_t sock) {
  int port = 0;
  const std::string client = Peer(sock, &port);
  if (const std::string refused = Admit(client); !refused.empty()) {
    Refuse(sock, refused);
    ::close(sock);
    return false;
  }
  std::vector<std::thread> finished;
  {
    absl::MutexLock lock(&mu_);
    for (int id : done_) {
      if (auto it = threads_.find(id); it != threads_.end()) {
        finished.push_back(std::move(it->second));
        threads_.erase(it);
      }
    }
    done_.clear();
    const int id = next_id_++;
    threads_.emplace(id, std::thread([this, sock, client, id] {
                       Serve(sock);
                       CloseGracefully(sock);
                       absl::MutexLock lock(&mu_);
                       --open_;
                       if (--per_client_[client] <= 0) per_client_.erase(client);
                       done_.push_back(id);
                     }));
  }
  for (std::thread& t : finished) t.join();  // each has ended or is ending
  return true;
}

void GuardedServer::JoinAll() {
  std::map<int, std::thread> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(threads_);
    done_.clear();
  }
  for (auto& [id, t] : all) t.join();
}

void GuardedServer::Serve(socket_t sock) {
  Connection c;
  c.fd = sock;
  t_connection = &c;
  DeadlineStream strm(sock, &c, limits_, &svr_sock_);
  bool ok = true;
  // As httplib: at most keep_alive_max_count_ requests per connection.
  for (size_t i = 0; i < keep_alive_max_count_; ++i) {
    if (!strm.WaitForRequest(limits_.idle_timeout)) break;
    strm.StartRequest(absl::Now() + limits_.request_timeout);
    bool closed = false;
    ok = process_request(strm, i + 1 == keep_alive_max_count_, closed,
                         [&c](httplib::Request&) { c.head_done = true; });
    if (!ok || closed || c.close || svr_sock_ == INVALID_SOCKET) break;
  }
  t_connection = nullptr;
}

bool PeerClosedConnection() {
  if (t_connection == nullptr) return false;
  pollfd p{t_connection->fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  char byte;
  return ::recv(t_connection->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void CloseConnectionAfterResponse(httplib::Response& res) {
  res.set_header("Connection", "close");
  if (t_connection != nullptr) t_connection->close = true;
}

}  // namespace braid::dashboard
