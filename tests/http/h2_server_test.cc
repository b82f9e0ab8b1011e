// H2ServerConnection over loopback TCP, driven by an in-process nghttp2 client session:
// requests and answers, many streams, flow control both ways, resets, limits and timeouts.
#include "http/h2_server.h"

#include <catch2/catch.hpp>
#include <nghttp2/nghttp2.h>
#include <openssl/sha.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/tcp.h"

using namespace p2proxy;
using namespace p2proxy::http;
using net::Loop;
using net::TcpListener;
using net::TcpStream;

namespace {

std::vector<uint8_t> Pattern(size_t len, uint32_t seed) {
  std::vector<uint8_t> v(len);
  uint32_t x = seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

std::string Sha256(base::ByteSpan data) {
  uint8_t out[SHA256_DIGEST_LENGTH];
  SHA256(data.data(), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

base::ByteSpan Bytes(std::string_view s) {
  return base::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

const Header* FindHeader(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

// H2Client is an nghttp2 client session over a TcpStream, pumped by hand.
class H2Client : public net::StreamHandler {
 public:
  struct Response {
    int status = 0;
    std::vector<Header> headers;
    std::string body;
    size_t body_len = 0;
    SHA256_CTX sha;
    bool keep_body = true;
    bool closed = false;
    uint32_t error_code = 0;
  };
  // Upload is one request body, read by nghttp2 as the server's windows allow.
  struct Upload {
    const std::vector<uint8_t>* data = nullptr;
    size_t sent = 0;
  };

  // Options: the stream window the client advertises, and whether nghttp2 returns window as
  // the client receives data (off: a client that never opens its windows again).
  struct Options {
    int32_t stream_window = 16 << 20;
    bool auto_window_update = true;
    bool auto_ping_ack = true;  // off: PINGs are kept in |pings| for the test to answer
  };

  explicit H2Client(std::unique_ptr<TcpStream> tcp) : H2Client(std::move(tcp), Options()) {}
  H2Client(std::unique_ptr<TcpStream> tcp, Options options) : tcp_(std::move(tcp)) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &OnDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &OnStreamClose);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &OnFrameRecv);
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, options.auto_window_update ? 0 : 1);
    nghttp2_option_set_no_auto_ping_ack(opt, options.auto_ping_ack ? 0 : 1);
    nghttp2_session_client_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(options.stream_window)},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 3);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 64 << 20);
    tcp_->SetHandler(this);
  }
  ~H2Client() override {
    tcp_.reset();
    nghttp2_session_del(session_);
  }

  // Get / Request submit a request; the frames leave with Flush().
  int32_t Get(const std::string& path, std::vector<Header> extra = {}) {
    return Request("GET", path, std::move(extra), nullptr);
  }
  int32_t Request(const std::string& method, const std::string& path, std::vector<Header> extra,
                  Upload* upload) {
    std::vector<Header> fields = {{":method", method},
                                  {":scheme", "http"},
                                  {":authority", "example.test"},
                                  {":path", path}};
    for (auto& h : extra) fields.push_back(std::move(h));
    std::vector<nghttp2_nv> nva;
    for (const Header& h : fields) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
                     h.value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider provider;
    provider.source.ptr = upload;
    provider.read_callback = &ReadUpload;
    int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                        upload ? &provider : nullptr, this);
    if (id > 0) SHA256_Init(&responses[id].sha);
    return id;
  }

  void Flush() {
    std::vector<uint8_t> out;
    for (;;) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) break;
      out.insert(out.end(), data, data + n);
    }
    if (!out.empty()) {
      bytes_written += out.size();
      tcp_->WriteOwned(std::move(out));
    }
  }
  void WriteRaw(std::string_view bytes) { tcp_->Write(Bytes(bytes)); }

  void OnData(base::ByteSpan data) override {
    ssize_t rv = nghttp2_session_mem_recv(session_, data.data(), data.size());
    if (rv < 0) recv_error = static_cast<int>(rv);
    Flush();
  }
  void OnEnd() override { eof = true; }
  void OnError(const absl::Status& status) override { error = status; }

  TcpStream& tcp() { return *tcp_; }
  nghttp2_session* session() { return session_; }
  bool done(int32_t id) { return responses[id].closed; }

  std::map<int32_t, Response> responses;
  bool eof = false;
  absl::Status error;
  int recv_error = 0;
  bool got_goaway = false;
  uint32_t goaway_error = 0;
  std::vector<int32_t> goaway_last_ids;
  std::function<void()> on_goaway;         // runs inside the receive of each GOAWAY
  std::vector<std::vector<uint8_t>> pings;  // PINGs received (kept when auto_ping_ack is off)
  size_t ping_acks = 0;      // answers to the client's own PINGs
  size_t settings_acks = 0;  // the server acknowledged the client's SETTINGS
  size_t bytes_written = 0;

 private:
  static H2Client* Self(void* p) { return static_cast<H2Client*>(p); }
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Response& r = Self(user_data)->responses[frame->hd.stream_id];
    std::string n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      r.status = std::stoi(v);
    } else {
      r.headers.push_back({n, v});
    }
    return 0;
  }
  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* user_data) {
    Response& r = Self(user_data)->responses[id];
    r.body_len += len;
    SHA256_Update(&r.sha, data, len);
    if (r.keep_body) r.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user_data) {
    Response& r = Self(user_data)->responses[id];
    r.closed = true;
    r.error_code = error_code;
    return 0;
  }
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    H2Client* self = Self(user_data);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      self->got_goaway = true;
      self->goaway_error = frame->goaway.error_code;
      self->goaway_last_ids.push_back(frame->goaway.last_stream_id);
      if (self->on_goaway) self->on_goaway();
    }
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
      self->pings.emplace_back(frame->ping.opaque_data, frame->ping.opaque_data + 8);
    }
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) ++self->ping_acks;
    if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
      ++self->settings_acks;
    }
    return 0;
  }
  static ssize_t ReadUpload(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                            uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* up = static_cast<Upload*>(source->ptr);
    size_t n = std::min(length, up->data->size() - up->sent);
    std::memcpy(buf, up->data->data() + up->sent, n);
    up->sent += n;
    if (up->sent == up->data->size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  std::unique_ptr<TcpStream> tcp_;
  nghttp2_session* session_ = nullptr;
};

// FnRouter records each request head and makes handlers with |make| (nullptr: 404).
class FnRouter : public Router {
 public:
  std::unique_ptr<ExchangeHandler> OnRequest(Exchange& exchange) override {
    seen.push_back(exchange.request());
    return make ? make(exchange) : nullptr;
  }
  std::function<std::unique_ptr<ExchangeHandler>(Exchange&)> make;
  std::vector<RequestHead> seen;
};

// StaticHandler answers with a fixed status, fields and body once the request has ended.
class StaticHandler : public ExchangeHandler {
 public:
  StaticHandler(Exchange& ex, int status, std::string body, std::vector<Header> headers = {})
      : ex_(ex), status_(status), body_(std::move(body)), headers_(std::move(headers)) {}
  void OnRequestBody(base::ByteSpan) override {}
  void OnRequestEnd() override {
    ResponseHead head;
    head.status = status_;
    head.headers = headers_;
    head.content_length = static_cast<int64_t>(body_.size());
    ex_.SendResponseHead(head, false);
    ex_.SendResponseBody(Bytes(body_), true);
  }
  void OnReset(const absl::Status&) override {}

 private:
  Exchange& ex_;
  int status_;
  std::string body_;
  std::vector<Header> headers_;
};

// HoldState is what a HoldHandler saw; the handler itself dies with its stream.
struct HoldState {
  Exchange* exchange = nullptr;
  bool ended = false;
  bool reset = false;
  bool destroyed = false;
  absl::Status why;
};

// HoldHandler answers nothing by itself; the test drives its Exchange.
class HoldHandler : public ExchangeHandler {
 public:
  HoldHandler(Exchange& ex, HoldState* st) : st_(st) { st_->exchange = &ex; }
  ~HoldHandler() override { st_->destroyed = true; }
  void OnRequestBody(base::ByteSpan) override {}
  void OnRequestEnd() override { st_->ended = true; }
  void OnReset(const absl::Status& why) override {
    st_->reset = true;
    st_->why = why;
  }

 private:
  HoldState* st_;
};

// Harness: a listener whose accepted connections are served by one H2ServerConnection, and a
// client connected to it.
struct Harness {
  // |manual_time|: the loop's timers move only with loop.AdvanceTime (timeouts on fake time).
  explicit Harness(Router& router, ServerLimits limits = {}, bool manual_time = false,
                   H2Admission* admission = nullptr)
      : router(router), limits(limits), admission(admission) {
    if (manual_time) loop.UseManualTime();
    auto l = TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                 [this](std::unique_ptr<TcpStream> s) { Accept(std::move(s)); });
    REQUIRE(l.ok());
    listener = std::move(*l);
  }
  ~Harness() {
    client.reset();
    conn.reset();
  }

  void Accept(std::unique_ptr<TcpStream> s) {
    server_tcp = s.get();
    ConnectionInfo info;
    info.peer_address = "127.0.0.1";
    conn = std::make_unique<H2ServerConnection>(
        loop, std::move(s), info, router, limits,
        [this] {
          closed = true;
          server_tcp = nullptr;
          conn.reset();
        },
        &counters, admission);
    conn->Start();
  }

  // Connect makes the client; with |raw| it speaks no HTTP/2 (for garbage and timeouts).
  void Connect(bool raw = false) {
    std::unique_ptr<TcpStream> tcp;
    TcpStream::Connect(loop, listener->local_address(),
                       [&](absl::StatusOr<std::unique_ptr<TcpStream>> s) {
                         REQUIRE(s.ok());
                         tcp = std::move(*s);
                       });
    REQUIRE(loop.RunUntil([&] { return tcp && conn; }, absl::Seconds(10)));
    if (raw) {
      raw_client = std::move(tcp);
      raw_client->SetHandler(&raw_handler);
    } else {
      client = std::make_unique<H2Client>(std::move(tcp), client_options);
      client->Flush();
    }
  }

  bool RunUntil(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(20)) {
    return loop.RunUntil(done, limit);
  }

  struct RawHandler : net::StreamHandler {
    void OnData(base::ByteSpan data) override { received += data.size(); }
    void OnEnd() override { ended = true; }
    void OnError(const absl::Status&) override { ended = true; }
    size_t received = 0;
    bool ended = false;
  };

  Loop loop;
  Router& router;
  ServerLimits limits;
  H2Admission* admission;
  H2Client::Options client_options;
  H2ServerCounters counters;
  std::unique_ptr<TcpListener> listener;
  std::unique_ptr<H2ServerConnection> conn;
  TcpStream* server_tcp = nullptr;
  bool closed = false;
  std::unique_ptr<H2Client> client;
  std::unique_ptr<TcpStream> raw_client;
  RawHandler raw_handler;
};

}  // namespace

TEST_CASE("HTTP/2 server: GET gets status, fields and body, and the handler sees the request") {
  FnRouter router;
  router.make = [](Exchange& ex) {
    return std::make_unique<StaticHandler>(
        ex, 200, "hello world",
        std::vector<Header>{{"x-test", "yes"},
                            {"X-Upper", "1"},
                            {"connection", "keep-alive"},
                            {"keep-alive", "timeout=5"},
                            {"transfer-encoding", "chunked"},
                            {"content-length", "999"}});
  };
  Harness h(router);
  h.Connect();
  int32_t id = h.client->Get("/hello?x=1", {{"user-agent", "test/1"},
                                           {"cookie", "a=1"},
                                           {"cookie", "b=2"}});
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(id); }));

  const auto& r = h.client->responses[id];
  REQUIRE(r.error_code == NGHTTP2_NO_ERROR);
  REQUIRE(r.status == 200);
  REQUIRE(r.body == "hello world");
  REQUIRE(FindHeader(r.headers, "x-test"));
  REQUIRE(FindHeader(r.headers, "x-upper"));
  REQUIRE(FindHeader(r.headers, "content-length")->value == "11");
  REQUIRE_FALSE(FindHeader(r.headers, "connection"));
  REQUIRE_FALSE(FindHeader(r.headers, "keep-alive"));
  REQUIRE_FALSE(FindHeader(r.headers, "transfer-encoding"));

  REQUIRE(router.seen.size() == 1);
  const RequestHead& req = router.seen[0];
  REQUIRE(req.method == "GET");
  REQUIRE(req.scheme == "http");
  REQUIRE(req.authority == "example.test");
  REQUIRE(req.path == "/hello?x=1");
  REQUIRE(req.version == 20);
  REQUIRE(req.end_stream);
  REQUIRE(req.content_length == -1);
  REQUIRE(FindHeader(req.headers, "user-agent")->value == "test/1");
  REQUIRE(FindHeader(req.headers, "cookie")->value == "a=1; b=2");
  REQUIRE_FALSE(FindHeader(req.headers, "host"));
  REQUIRE(h.counters.streams == 1);
  REQUIRE(h.counters.connections == 1);
  REQUIRE(h.counters.protocol_errors == 0);
}

TEST_CASE("HTTP/2 server: 404 when the router returns no handler, HEAD gets no body") {
  FnRouter router;
  Harness h(router);
  h.Connect();
  int32_t missing = h.client->Get("/missing");
  int32_t head = h.client->Request("HEAD", "/missing", {}, nullptr);
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(missing) && h.client->done(head); }));
  REQUIRE(h.client->responses[missing].status == 404);
  REQUIRE(h.client->responses[missing].body == "not found\n");
  REQUIRE(h.client->responses[head].status == 404);
  REQUIRE(h.client->responses[head].error_code == NGHTTP2_NO_ERROR);
  REQUIRE(h.client->responses[head].body.empty());
  REQUIRE(router.seen.size() == 2);
}

TEST_CASE("HTTP/2 server: 100 concurrent streams on one connection each get their own body") {
  FnRouter router;
  router.make = [](Exchange& ex) {
    const std::string& path = ex.request().path;
    std::string body;
    for (size_t i = 0; i < 50 + path.size() * 97; ++i) body += path;
    return std::make_unique<StaticHandler>(ex, 200, body);
  };
  Harness h(router);
  h.Connect();
  std::map<int32_t, std::string> want;
  for (int i = 0; i < 100; ++i) {
    std::string path = "/s/" + std::to_string(i);
    int32_t id = h.client->Get(path);
    REQUIRE(id > 0);
    std::string body;
    for (size_t k = 0; k < 50 + path.size() * 97; ++k) body += path;
    want[id] = body;
  }
  h.client->Flush();
  REQUIRE(h.RunUntil([&] {
    for (auto& [id, body] : want) {
      if (!h.client->done(id)) return false;
    }
    return true;
  }));
  for (auto& [id, body] : want) {
    INFO("stream " << id);
    REQUIRE(h.client->responses[id].status == 200);
    REQUIRE(h.client->responses[id].body == body);
  }
  REQUIRE(h.counters.streams == 100);
  REQUIRE(h.conn->num_streams() == 0);
}

namespace {

// UploadState: what an UploadHandler took, and when it paused.
struct UploadState {
  Exchange* exchange = nullptr;
  size_t received = 0;
  size_t pause_every = 0;
  size_t next_pause = 0;
  bool paused = false;
  bool got_body_while_paused = false;
  bool ended = false;
  SHA256_CTX sha;
};

// UploadHandler hashes the request body, pausing each time another |pause_every| bytes came.
class UploadHandler : public ExchangeHandler {
 public:
  UploadHandler(Exchange& ex, UploadState* st) : ex_(ex), st_(st) {
    st_->exchange = &ex;
    SHA256_Init(&st_->sha);
    st_->next_pause = st_->pause_every;
  }
  ~UploadHandler() override { st_->exchange = nullptr; }
  void OnRequestBody(base::ByteSpan data) override {
    if (st_->paused) st_->got_body_while_paused = true;
    st_->received += data.size();
    SHA256_Update(&st_->sha, data.data(), data.size());
    if (st_->pause_every && st_->received >= st_->next_pause) {
      st_->next_pause += st_->pause_every;
      st_->paused = true;
      ex_.PauseRequestBody();
    }
  }
  void OnRequestEnd() override {
    st_->ended = true;
    std::string body = std::to_string(st_->received);
    ResponseHead head;
    head.content_length = static_cast<int64_t>(body.size());
    ex_.SendResponseHead(head, false);
    ex_.SendResponseBody(Bytes(body), true);
  }
  void OnReset(const absl::Status&) override {}

 private:
  Exchange& ex_;
  UploadState* st_;
};

}  // namespace

TEST_CASE("HTTP/2 server: a paused handler stalls the upload at the stream window, and it completes intact") {
  constexpr size_t kTotal = 8 << 20;
  const auto payload = Pattern(kTotal, 7);
  UploadState st;
  st.pause_every = 2 << 20;
  FnRouter router;
  router.make = [&](Exchange& ex) { return std::make_unique<UploadHandler>(ex, &st); };
  Harness h(router);
  h.Connect();
  H2Client::Upload upload{&payload, 0};
  int32_t id = h.client->Request("POST", "/upload",
                                 {{"content-length", std::to_string(kTotal)}}, &upload);
  h.client->Flush();

  int pauses = 0;
  while (!h.client->done(id)) {
    REQUIRE(h.RunUntil([&] { return st.paused || h.client->done(id); }));
    if (!st.paused) break;
    ++pauses;
    // The client runs out of window: what it sent beyond what the handler took is bounded by
    // the stream window the server advertised.
    const size_t taken = st.received;
    REQUIRE(h.RunUntil([&] {
      return upload.sent == kTotal ||
             nghttp2_session_get_stream_remote_window_size(h.client->session(), id) <= 0;
    }));
    if (upload.sent < kTotal) {
      REQUIRE(upload.sent - taken <= static_cast<size_t>(H2ServerConnection::kStreamWindow));
    }
    REQUIRE(st.received == taken);
    REQUIRE_FALSE(st.got_body_while_paused);
    st.paused = false;
    if (st.exchange) st.exchange->ResumeRequestBody();  // gone once the answer went out
  }
  REQUIRE(h.RunUntil([&] { return h.client->done(id); }));
  REQUIRE(pauses >= 3);
  REQUIRE(st.ended);
  REQUIRE(st.received == kTotal);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &st.sha);
  REQUIRE(std::string(reinterpret_cast<char*>(digest), sizeof(digest)) == Sha256(payload));
  REQUIRE(h.client->responses[id].status == 200);
  REQUIRE(h.client->responses[id].body == std::to_string(kTotal));
  REQUIRE(router.seen[0].content_length == static_cast<int64_t>(kTotal));
  REQUIRE_FALSE(router.seen[0].end_stream);
}

namespace {

// DownloadState: the progress of a StreamingHandler and the most it saw buffered server-side.
struct DownloadState {
  Exchange* exchange = nullptr;
  const std::vector<uint8_t>* body = nullptr;
  size_t written = 0;
  size_t max_buffered = 0;
  size_t drained = 0;
  TcpStream** server_tcp = nullptr;
  absl::Status reset = absl::OkStatus();  // what the handler's OnReset said

  // Sample records the bytes buffered in user space on the server side: the exchange's queue
  // and the socket's write queue.
  void Sample() {
    size_t buffered = exchange ? exchange->ResponseQueueSize() : 0;
    if (*server_tcp) buffered += (*server_tcp)->WriteQueueSize();
    max_buffered = std::max(max_buffered, buffered);
  }
};

// StreamingHandler sends a large body in 64 KiB pieces while ResponseQueueSize() is below
// 256 KiB, going on at OnResponseDrained.
class StreamingHandler : public ExchangeHandler {
 public:
  StreamingHandler(Exchange& ex, DownloadState* st) : ex_(ex), st_(st) { st_->exchange = &ex; }
  ~StreamingHandler() override { st_->exchange = nullptr; }
  void OnRequestBody(base::ByteSpan) override {}
  void OnRequestEnd() override {
    ResponseHead head;
    head.content_length = static_cast<int64_t>(st_->body->size());
    ex_.SendResponseHead(head, false);
    Pump();
  }
  void OnResponseDrained() override {
    ++st_->drained;
    Pump();
  }
  void OnReset(const absl::Status& why) override { st_->reset = why; }

 private:
  void Pump() {
    const size_t total = st_->body->size();
    while (st_->written < total && ex_.ResponseQueueSize() < (256 << 10)) {
      size_t n = std::min<size_t>(64 << 10, total - st_->written);
      ex_.SendResponseBody(base::ByteSpan(st_->body->data() + st_->written, n),
                           st_->written + n == total);
      st_->written += n;
      Probe();
    }
  }
  void Probe() { st_->Sample(); }
  Exchange& ex_;
  DownloadState* st_;
};

// GetBigThenStopReading asks for /big, waits for its first body bytes, and stops reading the
// socket; it returns the stream id.
int32_t GetBigThenStopReading(Harness& h) {
  const int32_t id = h.client->Get("/big");
  h.client->responses[id].keep_body = false;
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->responses[id].body_len > 0; }));
  h.client->tcp().PauseReading();
  return id;
}

}  // namespace

TEST_CASE("HTTP/2 server: a 32 MB response to a client that stops reading keeps server buffers bounded") {
  constexpr size_t kTotal = 32 << 20;
  const auto body = Pattern(kTotal, 99);
  DownloadState st;
  st.body = &body;
  FnRouter router;
  router.make = [&](Exchange& ex) { return std::make_unique<StreamingHandler>(ex, &st); };
  Harness h(router);
  st.server_tcp = &h.server_tcp;
  h.Connect();
  const int32_t id = GetBigThenStopReading(h);

  // The kernel buffers fill; then the server stops making frames and the handler stops.
  REQUIRE(h.RunUntil([&] {
    st.Sample();
    return h.server_tcp && h.server_tcp->WriteQueueSize() > 0;
  }));
  for (int i = 0; i < 200; ++i) {
    h.loop.RunOnce(false);
    st.Sample();
  }
  const size_t written = st.written;
  for (int i = 0; i < 200; ++i) {
    h.loop.RunOnce(false);
    st.Sample();
  }
  REQUIRE(st.written == written);
  REQUIRE(written < kTotal);
  REQUIRE(st.max_buffered > (512u << 10));  // the socket queue did fill up to the high water
  REQUIRE(st.max_buffered <= (2u << 20));

  h.client->tcp().ResumeReading();
  REQUIRE(h.RunUntil([&] {
    st.Sample();
    return h.client->done(id);
  }, absl::Seconds(60)));
  const auto& r = h.client->responses[id];
  REQUIRE(r.error_code == NGHTTP2_NO_ERROR);
  REQUIRE(r.body_len == kTotal);
  SHA256_CTX sha = r.sha;
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &sha);
  REQUIRE(std::string(reinterpret_cast<char*>(digest), sizeof(digest)) == Sha256(body));
  REQUIRE(st.drained > 0);
  REQUIRE(st.max_buffered <= (2u << 20));
}

TEST_CASE("HTTP/2 server: a client RST_STREAM resets the handler, the connection goes on") {
  HoldState st;
  FnRouter router;
  router.make = [&](Exchange& ex) -> std::unique_ptr<ExchangeHandler> {
    if (ex.request().path == "/hold") return std::make_unique<HoldHandler>(ex, &st);
    return std::make_unique<StaticHandler>(ex, 200, "ok");
  };
  Harness h(router);
  h.Connect();
  int32_t id = h.client->Get("/hold");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return st.ended; }));
  nghttp2_submit_rst_stream(h.client->session(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return st.destroyed; }));
  REQUIRE(st.reset);
  REQUIRE(absl::IsCancelled(st.why));
  REQUIRE(h.counters.resets == 1);

  int32_t next = h.client->Get("/after");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(next); }));
  REQUIRE(h.client->responses[next].body == "ok");
}

TEST_CASE("HTTP/2 server: Abort resets the stream, SendError answers, early answers stop uploads") {
  HoldState st;
  FnRouter router;
  router.make = [&](Exchange& ex) -> std::unique_ptr<ExchangeHandler> {
    if (ex.request().path == "/abort") return std::make_unique<HoldHandler>(ex, &st);
    ex.SendError(403, "forbidden");  // before any body: the upload is cut short
    return std::make_unique<HoldHandler>(ex, &st);
  };
  Harness h(router);
  h.Connect();
  int32_t id = h.client->Get("/abort");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return st.ended; }));
  st.exchange->Abort();
  REQUIRE(h.RunUntil([&] { return h.client->done(id); }));
  REQUIRE(h.client->responses[id].error_code == NGHTTP2_INTERNAL_ERROR);
  REQUIRE(h.RunUntil([&] { return st.destroyed; }));
  REQUIRE_FALSE(st.reset);  // Abort is the handler's own doing

  st = HoldState();
  const auto payload = Pattern(4 << 20, 3);
  H2Client::Upload upload{&payload, 0};
  int32_t post = h.client->Request("POST", "/deny", {}, &upload);
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(post); }));
  REQUIRE(h.client->responses[post].status == 403);
  REQUIRE(h.client->responses[post].body == "forbidden\n");
  REQUIRE(h.client->responses[post].error_code == NGHTTP2_NO_ERROR);
  REQUIRE(upload.sent < payload.size());
  REQUIRE(h.RunUntil([&] { return st.destroyed; }));
  REQUIRE_FALSE(st.reset);
}

TEST_CASE("HTTP/2 server: a garbage preface closes the connection") {
  FnRouter router;
  Harness h(router);
  h.Connect(/*raw=*/true);
  h.raw_client->Write(Bytes("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"));
  REQUIRE(h.RunUntil([&] { return h.closed && h.raw_handler.ended; }));
  REQUIRE(h.counters.protocol_errors == 1);
  REQUIRE(router.seen.empty());
}

TEST_CASE("HTTP/2 server: a header block above max_header_bytes gets 431") {
  FnRouter router;
  ServerLimits limits;
  limits.max_header_bytes = 1024;
  Harness h(router, limits);
  h.Connect();
  int32_t id = h.client->Get("/", {{"x-big", std::string(2000, 'a')}});
  int32_t ok = h.client->Get("/small");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(id) && h.client->done(ok); }));
  REQUIRE(h.client->responses[id].status == 431);
  REQUIRE(h.client->responses[ok].status == 404);
  REQUIRE(router.seen.size() == 1);
}

TEST_CASE("HTTP/2 server: no preface within first_request_timeout closes the connection") {
  FnRouter router;
  ServerLimits limits;
  limits.first_request_timeout_ms = 10000;
  Harness h(router, limits, /*manual_time=*/true);
  h.Connect(/*raw=*/true);
  h.loop.AdvanceTime(absl::Milliseconds(9999));
  REQUIRE_FALSE(h.RunUntil([&] { return h.closed; }, absl::Milliseconds(50)));
  h.loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(h.RunUntil([&] { return h.closed && h.raw_handler.ended; }, absl::Seconds(5)));
}

TEST_CASE("HTTP/2 server: preface and SETTINGS but no request within first_request_timeout: GOAWAY and close") {
  FnRouter router;
  router.make = [](Exchange& ex) { return std::make_unique<StaticHandler>(ex, 200, "x"); };
  ServerLimits limits;
  limits.first_request_timeout_ms = 10000;
  limits.header_timeout_ms = 60000;  // not the one that fires
  Harness h(router, limits, /*manual_time=*/true);
  h.Connect();
  // The server acknowledged the client's SETTINGS: it has read the preface.
  REQUIRE(h.RunUntil([&] { return h.client->settings_acks > 0; }));
  // Settings exchanged, then silence: the connection is not idle-closed for 60 s, but the first
  // request is due within 10 s of the start.
  h.loop.AdvanceTime(absl::Seconds(10));
  REQUIRE(h.RunUntil([&] { return h.closed && h.client->got_goaway; }, absl::Seconds(5)));
  CHECK(router.seen.empty());
}

TEST_CASE("HTTP/2 server: a first request in time is served, and the first-request deadline does not return") {
  FnRouter router;
  router.make = [](Exchange& ex) { return std::make_unique<StaticHandler>(ex, 200, "x"); };
  ServerLimits limits;
  limits.first_request_timeout_ms = 10000;
  Harness h(router, limits, /*manual_time=*/true);
  h.Connect();
  h.loop.AdvanceTime(absl::Seconds(9));
  int32_t id = h.client->Get("/");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(id); }));
  h.loop.AdvanceTime(absl::Seconds(30));  // well past the first deadline, short of idle (60 s)
  int32_t again = h.client->Get("/");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(again); }));
  CHECK(h.client->responses[again].status == 200);
  CHECK_FALSE(h.closed);
}

namespace {

// CountingAdmission: an H2Admission with a stream cap and a window budget, for the tests.
struct CountingAdmission : H2Admission {
  bool TryOpenStream() override {
    if (open == max_streams) return false;
    ++open;
    return true;
  }
  void CloseStream() override { --open; }
  bool TryReserveWindow(size_t bytes) override {
    if (bytes > budget - reserved) return false;
    reserved += bytes;
    return true;
  }
  void ReleaseWindow(size_t bytes) override { reserved -= bytes; }
  size_t max_streams = 0;
  size_t open = 0;
  size_t budget = 0;
  size_t reserved = 0;
};

// UploadStall posts a body to a handler that pauses at once, and returns how many bytes the
// client could send beyond what the handler took before the server's windows shut (what the
// server may have to hold).
size_t UploadStall(Harness& h, UploadState& st, const std::vector<uint8_t>& payload, int32_t* id_out) {
  static H2Client::Upload upload;
  upload = H2Client::Upload{&payload, 0};
  const int32_t id = h.client->Request("POST", "/upload", {{"content-length", std::to_string(payload.size())}},
                                       &upload);
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return st.paused; }));
  // Stalled for good when the window is shut after a PING's answer: the server sends a
  // WINDOW_UPDATE before it answers a PING that came after the request.
  for (int round = 0; round < 64; ++round) {
    const size_t acks = h.client->ping_acks;
    nghttp2_submit_ping(h.client->session(), NGHTTP2_FLAG_NONE, nullptr);
    h.client->Flush();
    REQUIRE(h.RunUntil([&] { return h.client->ping_acks > acks; }));
    if (nghttp2_session_get_stream_remote_window_size(h.client->session(), id) <= 0) break;
  }
  REQUIRE(nghttp2_session_get_stream_remote_window_size(h.client->session(), id) <= 0);
  *id_out = id;
  return upload.sent - st.received;  // what the handler took came back as window at once
}

}  // namespace

TEST_CASE("HTTP/2 server: an H2Admission refuses streams over its cap with REFUSED_STREAM, and frees them as they close") {
  HoldState held[3];
  int made = 0;
  FnRouter router;
  router.make = [&](Exchange& ex) { return std::make_unique<HoldHandler>(ex, &held[made++]); };
  CountingAdmission admission;
  admission.max_streams = 2;
  Harness h(router, {}, false, &admission);
  h.Connect();
  const int32_t a = h.client->Get("/a");
  const int32_t b = h.client->Get("/b");
  const int32_t c = h.client->Get("/c");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(c); }));
  CHECK(h.client->responses[c].error_code == NGHTTP2_REFUSED_STREAM);
  CHECK(h.counters.refused_streams == 1);
  REQUIRE(h.RunUntil([&] { return held[0].ended && held[1].ended; }));
  CHECK(router.seen.size() == 2);  // the refused stream never reached the router
  CHECK(admission.open == 2);
  // One finishes: its slot comes back and a new stream is admitted.
  ResponseHead head;
  head.content_length = 0;
  held[0].exchange->SendResponseHead(head, true);
  REQUIRE(h.RunUntil([&] { return h.client->done(a); }));
  REQUIRE(h.RunUntil([&] { return admission.open == 1; }));
  const int32_t d = h.client->Get("/d");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return held[2].ended; }));
  CHECK(admission.open == 2);
  CHECK_FALSE(h.client->done(d));
  CHECK_FALSE(h.client->done(b));
  // The connection going away gives every slot back.
  h.conn.reset();
  CHECK(admission.open == 0);
}

TEST_CASE("HTTP/2 server: request-body windows grow past the base only while the window budget lasts") {
  const auto payload = Pattern(4 << 20, 3);
  FnRouter router;
  UploadState st;
  st.pause_every = 1;  // pause after the first bytes: everything else must be held or refused
  router.make = [&](Exchange& ex) { return std::make_unique<UploadHandler>(ex, &st); };
  constexpr size_t kGrowth = H2ServerConnection::kStreamWindow - H2ServerConnection::kBaseStreamWindow;

  SECTION("with budget: the full stream window") {
    CountingAdmission admission;
    admission.max_streams = 10;
    admission.budget = kGrowth;
    Harness h(router, {}, false, &admission);
    h.Connect();
    int32_t id = 0;
    const size_t sent = UploadStall(h, st, payload, &id);
    CHECK(sent > static_cast<size_t>(H2ServerConnection::kBaseStreamWindow));
    CHECK(sent <= static_cast<size_t>(H2ServerConnection::kStreamWindow));
    CHECK(admission.reserved == kGrowth);
    CHECK(h.counters.small_windows == 0);
    h.conn.reset();
    CHECK(admission.reserved == 0);  // given back when the stream goes
  }
  SECTION("budget spent: the base window only") {
    CountingAdmission admission;
    admission.max_streams = 10;
    admission.budget = kGrowth - 1;
    Harness h(router, {}, false, &admission);
    h.Connect();
    int32_t id = 0;
    const size_t sent = UploadStall(h, st, payload, &id);
    CHECK(sent <= static_cast<size_t>(H2ServerConnection::kBaseStreamWindow));
    CHECK(admission.reserved == 0);
    CHECK(h.counters.small_windows == 1);
    // Still completes once the handler takes the bytes.
    while (!h.client->done(id)) {
      st.paused = false;
      st.pause_every = 0;
      if (st.exchange) st.exchange->ResumeRequestBody();
      REQUIRE(h.RunUntil([&] { return h.client->done(id); }));
    }
    CHECK(st.received == payload.size());
  }
}

TEST_CASE("HTTP/2 server: an idle connection gets GOAWAY and is closed") {
  FnRouter router;
  router.make = [](Exchange& ex) { return std::make_unique<StaticHandler>(ex, 200, "x"); };
  ServerLimits limits;
  limits.idle_timeout_ms = 60000;
  Harness h(router, limits, /*manual_time=*/true);
  h.Connect();
  int32_t id = h.client->Get("/");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(id); }));
  // A byte received 30 s later (a PING; its answer says the server read it) restarts the idle
  // clock: the connection is idle 60 s after it, at 90 s.
  h.loop.AdvanceTime(absl::Seconds(30));
  nghttp2_submit_ping(h.client->session(), NGHTTP2_FLAG_NONE, nullptr);
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->ping_acks == 1; }));
  h.loop.AdvanceTime(absl::Milliseconds(59999));
  REQUIRE_FALSE(h.RunUntil([&] { return h.closed || h.client->got_goaway; }, absl::Milliseconds(50)));
  h.loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(h.RunUntil([&] { return h.closed && h.client->got_goaway; }, absl::Seconds(5)));
  REQUIRE(h.client->goaway_error == NGHTTP2_NO_ERROR);
}

TEST_CASE("HTTP/2 server: Shutdown lets the open stream finish, then closes") {
  HoldState st;
  FnRouter router;
  router.make = [&](Exchange& ex) { return std::make_unique<HoldHandler>(ex, &st); };
  Harness h(router);
  h.Connect();
  int32_t id = h.client->Get("/slow");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return st.ended; }));
  h.conn->Shutdown();
  REQUIRE(h.RunUntil([&] { return h.client->got_goaway; }));
  REQUIRE_FALSE(h.closed);
  ResponseHead head;
  head.content_length = 4;
  st.exchange->SendResponseHead(head, false);
  st.exchange->SendResponseBody(Bytes("done"), true);
  REQUIRE(h.RunUntil([&] { return h.closed && h.client->done(id); }));
  REQUIRE(h.client->responses[id].body == "done");
  REQUIRE_FALSE(st.reset);
  REQUIRE(st.destroyed);
}

TEST_CASE("HTTP/2 server: Shutdown warns first, and a stream that crossed the warning is still served") {
  HoldState st;
  FnRouter router;
  router.make = [&](Exchange& ex) { return std::make_unique<HoldHandler>(ex, &st); };
  Harness h(router);
  h.client_options.auto_ping_ack = false;
  h.Connect();
  REQUIRE(h.RunUntil([&] { return h.counters.connections == 1 && h.client->bytes_written > 0; }));
  // The server decides to shut down; the warning leaves on its next turn. The client's request
  // is already on the wire by then, so the server reads it after it sent the warning: a
  // one-step GOAWAY (last stream 0) would refuse it.
  h.conn->Shutdown();
  const int32_t id = h.client->Get("/late");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return !h.client->goaway_last_ids.empty() && !h.client->pings.empty() && st.ended; }));
  CHECK(h.client->goaway_last_ids[0] == 0x7fffffff);
  // The PING's answer: the final GOAWAY names the stream that crossed.
  nghttp2_submit_ping(h.client->session(), NGHTTP2_FLAG_ACK, h.client->pings.back().data());
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->goaway_last_ids.size() == 2; }));
  CHECK(h.client->goaway_last_ids[1] == id);
  CHECK_FALSE(h.closed);
  ResponseHead head;
  head.content_length = 15;
  st.exchange->SendResponseHead(head, false);
  st.exchange->SendResponseBody(Bytes("late but served"), true);
  REQUIRE(h.RunUntil([&] { return h.client->done(id) && h.closed; }));
  CHECK(h.client->responses[id].status == 200);
  CHECK(h.client->responses[id].body == "late but served");
  CHECK_FALSE(st.reset);
}

TEST_CASE("HTTP/2 server: Shutdown without the PING's answer closes after a grace period") {
  FnRouter router;
  router.make = [&](Exchange& ex) { return std::make_unique<StaticHandler>(ex, 200, "x"); };
  Harness h(router);
  h.client_options.auto_ping_ack = false;  // and never answered
  h.Connect();
  REQUIRE(h.RunUntil([&] { return h.counters.connections == 1 && h.client->bytes_written > 0; }));
  h.conn->Shutdown();
  REQUIRE(h.RunUntil([&] { return !h.client->goaway_last_ids.empty(); }));
  CHECK(h.client->goaway_last_ids[0] == 0x7fffffff);
  CHECK_FALSE(h.closed);  // waiting for the answer
  // (With no stream open, the client's nghttp2 reads nothing after the first GOAWAY, so the
  // final one is not observed here; the close is.)
  REQUIRE(h.RunUntil([&] { return h.closed && (h.client->eof || !h.client->error.ok()); },
                     absl::Milliseconds(H2ServerConnection::kGoawayGraceMs) + absl::Seconds(10)));
}

TEST_CASE("HTTP/2 server: destroying the connection resets open exchanges") {
  HoldState st;
  FnRouter router;
  router.make = [&](Exchange& ex) { return std::make_unique<HoldHandler>(ex, &st); };
  Harness h(router);
  h.Connect();
  h.client->Get("/slow");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return st.ended; }));
  h.conn.reset();
  REQUIRE(st.reset);
  REQUIRE(st.destroyed);
  REQUIRE(h.RunUntil([&] { return h.client->eof || !h.client->error.ok(); }));
}

TEST_CASE("HTTP/2 server: a client that stops reading is cut off after send_timeout_ms") {
  constexpr size_t kTotal = 64 << 20;
  const auto body = Pattern(kTotal, 7);
  DownloadState st;
  st.body = &body;
  FnRouter router;
  router.make = [&](Exchange& ex) { return std::make_unique<StreamingHandler>(ex, &st); };
  ServerLimits limits;
  limits.send_timeout_ms = 30000;
  Harness h(router, limits, /*manual_time=*/true);
  st.server_tcp = &h.server_tcp;
  // A stream window far above what the sockets can hold: the transport stalls, not the window.
  h.client_options.stream_window = 1 << 30;
  h.Connect();
  const int32_t id = h.client->Get("/big");
  h.client->responses[id].keep_body = false;
  h.client->Flush();
  // The watch took its baseline when the request came, with at most kWriteHighWater handed to
  // the socket; the client reads well past that, so bytes left since, then stops reading.
  REQUIRE(h.RunUntil([&] { return h.client->responses[id].body_len >= (4u << 20); }, absl::Seconds(60)));
  h.client->tcp().PauseReading();
  // The socket buffers fill and the transport's queue stops moving.
  REQUIRE(h.RunUntil([&] { return h.server_tcp && h.server_tcp->WriteQueueSize() > 0; }));
  // The looks run inside AdvanceTime, back to back: no byte can leave between them.
  h.loop.AdvanceTime(absl::Milliseconds(30000));  // first look: bytes left since the baseline
  CHECK(h.counters.send_timeouts == 0);
  h.loop.AdvanceTime(absl::Milliseconds(29999));
  CHECK(h.counters.send_timeouts == 0);
  h.loop.AdvanceTime(absl::Milliseconds(1));  // a whole period with nothing leaving
  CHECK(h.counters.send_timeouts == 1);
  REQUIRE(h.RunUntil([&] { return h.closed; }));
  CHECK_FALSE(st.reset.ok());
  CHECK(st.written < kTotal);
}

TEST_CASE("HTTP/2 server: a stream whose window stays shut is reset after send_timeout_ms, and the connection lives on") {
  constexpr size_t kTotal = 1 << 20;
  const auto body = Pattern(kTotal, 8);
  DownloadState st;
  st.body = &body;
  FnRouter router;
  router.make = [&](Exchange& ex) -> std::unique_ptr<ExchangeHandler> {
    if (ex.request().path == "/small") return std::make_unique<StaticHandler>(ex, 200, "small");
    return std::make_unique<StreamingHandler>(ex, &st);
  };
  ServerLimits limits;
  limits.send_timeout_ms = 30000;
  Harness h(router, limits, /*manual_time=*/true);
  st.server_tcp = &h.server_tcp;
  // 64 KiB per stream and never a WINDOW_UPDATE: the big response stops after its first 64 KiB.
  h.client_options.stream_window = 64 << 10;
  h.client_options.auto_window_update = false;
  h.Connect();
  int32_t big = h.client->Get("/big");
  h.client->responses[big].keep_body = false;
  h.client->Flush();
  // The last DATA frame the window allows arrived, and the transport is idle.
  REQUIRE(h.RunUntil([&] {
    return h.client->responses[big].body_len == (64u << 10) && h.server_tcp && h.server_tcp->WriteQueueSize() == 0;
  }));
  h.loop.AdvanceTime(absl::Milliseconds(29999));
  REQUIRE_FALSE(h.RunUntil([&] { return h.client->responses[big].closed; }, absl::Milliseconds(50)));
  CHECK(h.counters.send_timeouts == 0);
  h.loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(h.RunUntil([&] { return h.client->responses[big].closed; }));
  CHECK(h.client->responses[big].error_code == NGHTTP2_CANCEL);
  CHECK(h.client->responses[big].body_len == (64u << 10));
  CHECK(h.counters.send_timeouts == 1);
  CHECK_FALSE(st.reset.ok());
  // The connection still serves.
  int32_t small = h.client->Get("/small");
  h.client->Flush();
  REQUIRE(h.RunUntil([&] { return h.client->done(small); }));
  CHECK(h.client->responses[small].status == 200);
  CHECK(h.client->responses[small].body == "small");
  CHECK_FALSE(h.closed);
}
