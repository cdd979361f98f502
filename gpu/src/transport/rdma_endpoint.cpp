#include "rdma_endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <sys/mman.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "grass/protocol.h"
#include "grass/rdma.h"

namespace grass {

namespace {

constexpr int kStepTimeoutMs = 5000;
constexpr int kCqEntries = 16;

std::string errno_text(const char* what) { return std::string(what) + ": " + strerror(errno); }

std::string format_addr(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const sockaddr_in*)sa)->sin_addr, host, sizeof host);
  else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &((const sockaddr_in6*)sa)->sin6_addr, host, sizeof host);
  return host;
}

// getaddrinfo of host:port into storage; throws naming the host.
void resolve(const RdmaAddress& a, bool passive, sockaddr_storage* out) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  std::string port = std::to_string(a.port);
  int rc = getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) throw std::runtime_error("rdma: cannot resolve '" + a.host + "': " + gai_strerror(rc));
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
}

void log(const std::string& line) { fprintf(stderr, "grass-agent: rdma: %s\n", line.c_str()); }

}  // namespace

RdmaAddress parse_rdma_address(const std::string& text) {
  const std::string scheme = "rdma://";
  if (text.rfind(scheme, 0) != 0) throw std::runtime_error("'" + text + "': expected rdma://HOST[:PORT]");
  std::string rest = text.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  RdmaAddress a{"", GRASS_RDMA_DEFAULT_PORT};
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) throw std::runtime_error("'" + text + "': unterminated [IPv6 address]");
    a.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') throw std::runtime_error("'" + text + "': expected :PORT after ]");
      port = rest.substr(close + 2);
    }
  } else {
    size_t colon = rest.find(':');
    a.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (a.host.empty()) throw std::runtime_error("'" + text + "': no host");
  if (!port.empty()) {
    char* end;
    unsigned long p = strtoul(port.c_str(), &end, 10);
    if (*end || p < 1 || p > 65535) throw std::runtime_error("'" + text + "': bad port " + port);
    a.port = (uint16_t)p;
  }
  return a;
}

HostBuffer::HostBuffer(uint64_t bytes) : bytes_(bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error(errno_text(("cannot allocate the " + std::to_string(bytes) + "-byte buffer").c_str()));
  data_ = (uint8_t*)p;
}

HostBuffer::~HostBuffer() { munmap(data_, bytes_); }

RdmaEndpoint::RdmaEndpoint(const RdmaOptions& options, uint8_t* buffer, uint64_t bytes)
    : options_(options), buffer_(buffer), bytes_(bytes) {
  if (options_.name.size() > sizeof(grass_rdma_hello::name)) options_.name.resize(sizeof(grass_rdma_hello::name));
}

RdmaEndpoint::~RdmaEndpoint() { stop(); }

void RdmaEndpoint::start() {
  channel_ = rdma_create_event_channel();
  if (!channel_) throw std::runtime_error(errno_text("rdma_create_event_channel (is rdma_ucm loaded and an RDMA device present?)"));
  if (!options_.connect_out) {
    if (options_.peers.empty()) throw std::runtime_error("--listen rdma:// needs at least one --peer ADDR (the monitors allowed to connect)");
    sockaddr_storage addr{};
    resolve(options_.address, true, &addr);
    if (rdma_create_id(channel_, &listener_, nullptr, RDMA_PS_TCP)) throw std::runtime_error(errno_text("rdma_create_id"));
    if (rdma_bind_addr(listener_, (sockaddr*)&addr)) throw std::runtime_error(errno_text(("rdma_bind_addr " + options_.address.host).c_str()));
    if (rdma_listen(listener_, 8)) throw std::runtime_error(errno_text("rdma_listen"));
    log("listening on " + options_.address.host + ":" + std::to_string(options_.address.port));
  }
  thread_ = std::thread([this] { run(); });
}

void RdmaEndpoint::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  for (auto& [id, c] : connections_) {
    rdma_disconnect(c.id);
    release(c);
  }
  connections_.clear();
  if (listener_) rdma_destroy_id(listener_);
  listener_ = nullptr;
  if (channel_) rdma_destroy_event_channel(channel_);
  channel_ = nullptr;
}

void RdmaEndpoint::run() {
  try {
    if (options_.connect_out) run_connect_out();
    else run_listen();
  } catch (const std::exception& e) {
    log(std::string("stopped: ") + e.what());
  }
}

// Waits up to timeout_ms for the next event of `id` (or, with id null, any event), returning
// whether it is `expected`. Other events are logged. Copies private data when asked.
bool RdmaEndpoint::wait_event(int expected, rdma_cm_id* id, int timeout_ms, std::vector<uint8_t>* private_data) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  last_event_ = "no event in " + std::to_string(timeout_ms) + " ms";
  while (!stopping_) {
    int left = (int)std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p = {channel_->fd, POLLIN, 0};
    if (poll(&p, 1, left < 250 ? left : 250) <= 0) continue;
    rdma_cm_event* ev;
    if (rdma_get_cm_event(channel_, &ev)) throw std::runtime_error(errno_text("rdma_get_cm_event"));
    bool ours = !id || ev->id == id;
    int type = ev->event;
    int status = ev->status;
    if (private_data && ev->param.conn.private_data)
      private_data->assign((const uint8_t*)ev->param.conn.private_data, (const uint8_t*)ev->param.conn.private_data + ev->param.conn.private_data_len);
    rdma_ack_cm_event(ev);
    if (ours && type == expected) return true;
    if (ours) {
      last_event_ = std::string(rdma_event_str((rdma_cm_event_type)type)) + " (status " + std::to_string(status) + ")";
      return false;
    }
  }
  return false;
}

void RdmaEndpoint::prepare(Connection& c) {
  ibv_context* ctx = c.id->verbs;
  if (!ctx) throw std::runtime_error("rdma: the connection has no device");
  c.pd = ibv_alloc_pd(ctx);
  if (!c.pd) throw std::runtime_error(errno_text("ibv_alloc_pd"));
  // The remote reads the whole buffer and writes requests into it; it never reaches anything else.
  c.mr = ibv_reg_mr(c.pd, buffer_, bytes_, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE);
  if (!c.mr) throw std::runtime_error(errno_text(("ibv_reg_mr of the " + std::to_string(bytes_) + "-byte buffer").c_str()));
  c.cq = ibv_create_cq(ctx, kCqEntries, nullptr, nullptr, 0);
  if (!c.cq) throw std::runtime_error(errno_text("ibv_create_cq"));
  ibv_qp_init_attr attr{};
  attr.send_cq = c.cq;
  attr.recv_cq = c.cq;
  attr.cap.max_send_wr = 1;
  attr.cap.max_recv_wr = 1;
  attr.cap.max_send_sge = 1;
  attr.cap.max_recv_sge = 1;
  attr.qp_type = IBV_QPT_RC;
  if (rdma_create_qp(c.id, c.pd, &attr)) throw std::runtime_error(errno_text("rdma_create_qp"));
  c.has_qp = true;
}

void RdmaEndpoint::release(Connection& c) {
  if (c.has_qp) rdma_destroy_qp(c.id);
  if (c.mr) ibv_dereg_mr(c.mr);
  if (c.cq) ibv_destroy_cq(c.cq);
  if (c.pd) ibv_dealloc_pd(c.pd);
  if (c.id) rdma_destroy_id(c.id);
  c = Connection{};
}

std::vector<uint8_t> RdmaEndpoint::hello(const Connection& c) const {
  grass_rdma_hello h{};
  h.magic = GRASS_RDMA_HELLO_MAGIC;
  h.version = GRASS_PROTOCOL_VERSION;
  h.buffer_addr = (uint64_t)(uintptr_t)buffer_;
  h.buffer_bytes = bytes_;
  h.rkey = c.mr->rkey;
  memcpy(h.name, options_.name.data(), options_.name.size());
  return std::vector<uint8_t>((const uint8_t*)&h, (const uint8_t*)&h + sizeof h);
}

static rdma_conn_param conn_param(const std::vector<uint8_t>& data) {
  rdma_conn_param p{};
  p.private_data = data.empty() ? nullptr : data.data();
  p.private_data_len = (uint8_t)data.size();
  p.responder_resources = RDMA_MAX_RESP_RES;
  p.initiator_depth = RDMA_MAX_INIT_DEPTH;
  p.retry_count = 7;
  p.rnr_retry_count = 7;
  return p;
}

// Connects to the monitor, then waits for the connection to end; again after retry_ms, for as
// long as the agent runs (a restarted monitor gets its session back while the target lives).
void RdmaEndpoint::run_connect_out() {
  std::string where = options_.address.host + ":" + std::to_string(options_.address.port);
  bool reported_failure = false;
  while (!stopping_) {
    Connection c;
    std::string failure;
    try {
      sockaddr_storage dst{};
      resolve(options_.address, false, &dst);
      if (rdma_create_id(channel_, &c.id, nullptr, RDMA_PS_TCP)) throw std::runtime_error(errno_text("rdma_create_id"));
      if (rdma_resolve_addr(c.id, nullptr, (sockaddr*)&dst, kStepTimeoutMs)) throw std::runtime_error(errno_text("rdma_resolve_addr"));
      if (!wait_event(RDMA_CM_EVENT_ADDR_RESOLVED, c.id, kStepTimeoutMs, nullptr)) throw std::runtime_error("address not resolved: " + last_event_);
      if (rdma_resolve_route(c.id, kStepTimeoutMs)) throw std::runtime_error(errno_text("rdma_resolve_route"));
      if (!wait_event(RDMA_CM_EVENT_ROUTE_RESOLVED, c.id, kStepTimeoutMs, nullptr)) throw std::runtime_error("route not resolved: " + last_event_);
      prepare(c);
      std::vector<uint8_t> h = hello(c);
      rdma_conn_param p = conn_param(h);
      if (rdma_connect(c.id, &p)) throw std::runtime_error(errno_text("rdma_connect"));
      if (!wait_event(RDMA_CM_EVENT_ESTABLISHED, c.id, kStepTimeoutMs, nullptr)) throw std::runtime_error("not accepted: " + last_event_ + " (monitor not listening?)");
      log("connected to monitor " + where + " (qp " + std::to_string(c.id->qp->qp_num) + ", rkey 0x" + [&] { char b[16]; snprintf(b, sizeof b, "%x", c.mr->rkey); return std::string(b); }() + ")");
      reported_failure = false;
      // Connected: nothing to do per request. Wait for the end of the connection.
      while (!stopping_) {
        pollfd pf = {channel_->fd, POLLIN, 0};
        if (poll(&pf, 1, 250) <= 0) continue;
        rdma_cm_event* ev;
        if (rdma_get_cm_event(channel_, &ev)) throw std::runtime_error(errno_text("rdma_get_cm_event"));
        int type = ev->event;
        rdma_ack_cm_event(ev);
        if (type == RDMA_CM_EVENT_DISCONNECTED || type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
          log(std::string("connection to ") + where + " lost (" + rdma_event_str((rdma_cm_event_type)type) + ")");
          break;
        }
      }
      if (!stopping_) rdma_disconnect(c.id);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (stopping_) {
      if (c.id) rdma_disconnect(c.id);
      release(c);
      return;
    }
    release(c);
    if (!failure.empty() && !reported_failure) {
      log("cannot connect to monitor " + where + ": " + failure + "; retrying every " + std::to_string(options_.retry_ms) + " ms");
      reported_failure = true;
    }
    for (int waited = 0; waited < options_.retry_ms && !stopping_; waited += 50) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void RdmaEndpoint::on_connect_request(rdma_cm_id* id) {
  std::string peer = format_addr(rdma_get_peer_addr(id));
  bool allowed = false;
  for (const auto& p : options_.peers) allowed = allowed || p == peer;
  if (!allowed) {
    log("refused a connection from " + peer + " (not a configured --peer)");
    rdma_reject(id, nullptr, 0);
    rdma_destroy_id(id);
    return;
  }
  Connection c;
  c.id = id;
  c.peer = peer;
  try {
    prepare(c);
    std::vector<uint8_t> h = hello(c);
    rdma_conn_param p = conn_param(h);
    if (rdma_accept(id, &p)) throw std::runtime_error(errno_text("rdma_accept"));
    connections_[id] = c;
  } catch (const std::exception& e) {
    log("cannot accept " + peer + ": " + e.what());
    rdma_reject(id, nullptr, 0);
    release(c);
  }
}

void RdmaEndpoint::run_listen() {
  while (!stopping_) {
    pollfd pf = {channel_->fd, POLLIN, 0};
    if (poll(&pf, 1, 250) <= 0) continue;
    rdma_cm_event* ev;
    if (rdma_get_cm_event(channel_, &ev)) throw std::runtime_error(errno_text("rdma_get_cm_event"));
    rdma_cm_id* id = ev->id;
    int type = ev->event;
    rdma_ack_cm_event(ev);
    auto it = connections_.find(id);
    switch (type) {
      case RDMA_CM_EVENT_CONNECT_REQUEST:
        on_connect_request(id);
        break;
      case RDMA_CM_EVENT_ESTABLISHED:
        if (it != connections_.end()) log("monitor " + it->second.peer + " connected (qp " + std::to_string(id->qp->qp_num) + ")");
        break;
      case RDMA_CM_EVENT_DISCONNECTED:
      case RDMA_CM_EVENT_CONNECT_ERROR:
      case RDMA_CM_EVENT_UNREACHABLE:
      case RDMA_CM_EVENT_REJECTED:
      case RDMA_CM_EVENT_DEVICE_REMOVAL:
        if (it != connections_.end()) {
          log("monitor " + it->second.peer + " gone (" + rdma_event_str((rdma_cm_event_type)type) + ")");
          release(it->second);
          connections_.erase(it);
        } else if (id == listener_ && type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
          throw std::runtime_error("the RDMA device under the listener was removed");
        }
        break;
      default:
        break;
    }
  }
}

}  // namespace grass
