// tcp_stream.h: lwIP TCP connections as net::Stream, a listener, and an outbound connector.
//
// Backpressure: received data is acknowledged to lwIP (tcp_recved, which reopens the window)
// only after the handler has taken it; while paused, segments wait here and the peer's window
// closes. Writes are copied into lwIP's send buffer as room allows; the rest waits in our queue
// (WriteQueueSize) until lwIP reports bytes acknowledged.
#ifndef P2PROXY_STACK_TCP_STREAM_H_
#define P2PROXY_STACK_TCP_STREAM_H_

#include <deque>
#include <memory>
#include <vector>

#include "stack/netstack.h"

namespace p2proxy::stack {

class LwipTcpStream final : public net::Stream {
 public:
  // Wraps an lwIP pcb (accepted or connected); takes over its callbacks.
  LwipTcpStream(NetStack& stack, struct tcp_pcb* pcb);
  ~LwipTcpStream() override;

  void SetHandler(net::StreamHandler* handler) override;
  void Write(base::ByteSpan data, WriteCallback done = nullptr) override;
  void WriteOwned(std::vector<uint8_t> data, WriteCallback done = nullptr) override;
  size_t WriteQueueSize() const override { return tx_queued_; }
  void Shutdown() override;
  void Close() override;
  void PauseReading() override;
  void ResumeReading() override;
  // Abort resets the connection (the peer sees RST), dropping everything queued; no further
  // callbacks. Used to refuse a peer that may not use the resource. Not from inside the accept
  // callback (lwIP would still hold the pcb): post it to a later turn.
  void Abort();
  void Reset() override { Abort(); }

 private:
  friend struct LwipTcpCallbacks;
  struct Pending {
    std::vector<uint8_t> data;
    size_t offset = 0;
    WriteCallback done;
  };
  void DeliverReceived();
  void PushToLwip();
  void Detach();  // clear lwIP's callbacks into us
  void Teardown(bool reset);  // Close (FIN after what lwIP holds) or Abort (RST)
  void Fail(const absl::Status& status);

  NetStack& stack_;
  struct tcp_pcb* pcb_;
  net::StreamHandler* handler_ = nullptr;
  std::deque<struct pbuf*> rx_;   // received, not yet handed to the handler
  bool paused_ = false;
  bool fin_received_ = false;     // the peer finished; OnEnd once rx_ is drained
  bool end_delivered_ = false;
  bool shutdown_requested_ = false;
  bool shutdown_done_ = false;
  bool closed_ = false;
  std::deque<Pending> tx_;
  size_t tx_queued_ = 0;
  bool* destroyed_ = nullptr;
  absl::Status pending_error_;  // failed before a handler was set: reported by SetHandler
};

class TcpListener {
 public:
  static absl::StatusOr<std::unique_ptr<TcpListener>> Create(NetStack& stack, const base::IpAddress& addr,
                                                             uint16_t port, NetStack::AcceptFn accept);
  ~TcpListener();

 private:
  friend struct LwipTcpCallbacks;
  TcpListener(NetStack& stack, NetStack::AcceptFn accept) : stack_(stack), accept_(std::move(accept)) {}
  NetStack& stack_;
  NetStack::AcceptFn accept_;
  struct tcp_pcb* pcb_ = nullptr;
};

// TcpConnector drives one outbound connect and deletes itself when it reports.
class TcpConnector {
 public:
  static void Start(NetStack& stack, const base::IpAddress& addr, uint16_t port, NetStack::ConnectFn done);

 private:
  friend struct LwipTcpCallbacks;
  TcpConnector(NetStack& stack, NetStack::ConnectFn done) : stack_(stack), done_(std::move(done)) {}
  NetStack& stack_;
  NetStack::ConnectFn done_;
  struct tcp_pcb* pcb_ = nullptr;
};

}  // namespace p2proxy::stack

#endif  // P2PROXY_STACK_TCP_STREAM_H_
