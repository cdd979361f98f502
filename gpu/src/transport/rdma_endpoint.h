// The agent's RDMA side (DESIGN.md §3.3-3.4): the GRASS buffer registered with the RDMA device
// and offered to a remote monitor over reliable-connected QPs. The agent either connects out to
// a monitor (the paper's direction: sessions exist before any fault) or listens for configured
// peers. At set-up the buffer's address, rkey and size travel as rdma_cm private data
// (grass/rdma.h). After that the remote works with one-sided READ/WRITE only: nothing here runs
// per request; a host thread only waits for connection-management events (disconnects, device
// removal) and, when connecting out, connects again after a loss.
#ifndef GRASS_TRANSPORT_RDMA_ENDPOINT_H
#define GRASS_TRANSPORT_RDMA_ENDPOINT_H

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

struct rdma_cm_id;
struct rdma_event_channel;
struct ibv_pd;
struct ibv_mr;
struct ibv_cq;

namespace grass {

struct RdmaAddress {
  std::string host;
  uint16_t port;
};

// rdma://HOST[:PORT] (IPv6 as [addr]; default port 7471). Throws naming the text.
RdmaAddress parse_rdma_address(const std::string& text);

struct RdmaOptions {
  bool connect_out = false;        // true: connect to `address`; false: listen on it
  RdmaAddress address;
  std::vector<std::string> peers;  // listening: source addresses allowed to connect
  std::string name;                // the target's name in the set-up message (24 bytes at most)
  int retry_ms = 2000;             // connecting out: pause between attempts
};

// Page-aligned host memory for the buffer (cpu backend): what ibv_reg_mr registers.
class HostBuffer {
 public:
  explicit HostBuffer(uint64_t bytes);
  ~HostBuffer();
  HostBuffer(const HostBuffer&) = delete;
  uint8_t* data() const { return data_; }
  uint64_t bytes() const { return bytes_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t bytes_ = 0;
};

class RdmaEndpoint {
 public:
  RdmaEndpoint(const RdmaOptions& options, uint8_t* buffer, uint64_t bytes);
  ~RdmaEndpoint();  // disconnects every peer and releases the verbs resources
  RdmaEndpoint(const RdmaEndpoint&) = delete;
  // Binds and listens at once (so a bad address fails the start), then serves on a thread.
  void start();
  void stop();

 private:
  struct Connection {
    rdma_cm_id* id = nullptr;
    ibv_pd* pd = nullptr;
    ibv_mr* mr = nullptr;
    ibv_cq* cq = nullptr;
    bool has_qp = false;
    std::string peer;
  };

  void run();
  void run_connect_out();
  void run_listen();
  bool wait_event(int expected, rdma_cm_id* id, int timeout_ms, std::vector<uint8_t>* private_data);
  void prepare(Connection& c);  // PD, MR over the buffer, CQ, QP on c.id; throws
  void release(Connection& c);
  std::vector<uint8_t> hello(const Connection& c) const;
  void on_connect_request(rdma_cm_id* id);

  RdmaOptions options_;
  uint8_t* buffer_;
  uint64_t bytes_;
  rdma_event_channel* channel_ = nullptr;
  rdma_cm_id* listener_ = nullptr;
  std::map<rdma_cm_id*, Connection> connections_;
  std::string last_event_;  // what wait_event saw instead of the event it waited for
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace grass

#endif
