// wg_stream.cc: WgStream.
#include "control/wg_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace p2proxy::control {

WgStream::WgStream(net::Loop& loop, std::unique_ptr<net::Stream> stream, MessagesFn on_messages, ClosedFn on_closed)
    : loop_(loop),
      stream_(std::move(stream)),
      on_messages_(std::move(on_messages)),
      on_closed_(std::move(on_closed)),
      alive_(std::make_shared<WgStream*>(this)) {
  stream_->SetHandler(this);
  stream_->ResumeReading();
}

WgStream::~WgStream() {
  *alive_ = nullptr;
  if (stream_) {
    stream_->SetHandler(nullptr);
    stream_->Close();
    loop_.DeferDelete(std::move(stream_));  // we may be inside one of its callbacks
  }
}

bool WgStream::Send(base::ByteSpan message) {
  if (!stream_ || stream_->WriteQueueSize() + out_.size() > kMaxQueued) {
    ++counters_.dropped_full;
    return false;
  }
  if (!nat::AppendStreamFrame(message, &out_)) return false;
  ++counters_.messages_out;
  if (out_.size() >= kCoalesce) {
    FlushOut();
  } else if (!flush_posted_) {
    flush_posted_ = true;
    loop_.Post([alive = alive_] {
      if (WgStream* self = *alive) {
        self->flush_posted_ = false;
        self->FlushOut();
      }
    });
  }
  return true;
}

void WgStream::FlushOut() {
  if (out_.empty() || !stream_) return;
  std::vector<uint8_t> data;
  data.swap(out_);
  out_.reserve(kCoalesce + nat::kMaxStreamMessage + nat::kStreamLengthSize);
  stream_->WriteOwned(std::move(data));
}

void WgStream::OnData(base::ByteSpan data) {
  batch_.clear();
  const auto result = reader_.Feed(data, [&](base::ByteSpan message) { batch_.push_back(message); });
  if (!batch_.empty()) {
    std::shared_ptr<WgStream*> alive = alive_;
    counters_.messages_in += batch_.size();
    on_messages_(batch_);
    if (*alive == nullptr || !stream_) return;
  }
  if (result == nat::StreamFrameReader::Result::kBadLength) {
    Closed(absl::InvalidArgumentError(absl::StrCat("wireguard over TLS: a frame length outside ", nat::kMinStreamMessage,
                                                   "..", nat::kMaxStreamMessage, " bytes")));
  }
}

void WgStream::OnEnd() { Closed(absl::UnavailableError("wireguard over TLS: the peer closed the connection")); }

void WgStream::OnError(const absl::Status& status) {
  Closed(absl::UnavailableError(absl::StrCat("wireguard over TLS: ", status.message())));
}

void WgStream::Closed(const absl::Status& why) {
  if (!stream_) return;
  stream_->SetHandler(nullptr);
  stream_->Close();
  loop_.DeferDelete(std::move(stream_));
  out_.clear();
  ClosedFn closed = std::move(on_closed_);
  if (closed) closed(why);  // may destroy this
}

}  // namespace p2proxy::control
