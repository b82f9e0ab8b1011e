// splice.cc: Splice.
#include "proxy/splice.h"

namespace p2proxy::proxy {

Splice::Splice(std::unique_ptr<net::Stream> a, std::unique_ptr<net::Stream> b, DoneFn done, size_t high_water)
    : a_(std::move(a)), b_(std::move(b)), done_(std::move(done)), high_water_(high_water) {
  side_a_.splice = side_b_.splice = this;
  side_a_.self = a_.get();
  side_a_.other = b_.get();
  side_a_.peer = &side_b_;
  side_a_.counter = &stats_.a_to_b;
  side_b_.self = b_.get();
  side_b_.other = a_.get();
  side_b_.peer = &side_a_;
  side_b_.counter = &stats_.b_to_a;
}

Splice::~Splice() {
  if (a_) a_->Close();
  if (b_) b_->Close();
}

void Splice::Start() {
  a_->SetHandler(&side_a_);
  if (!finished_) b_->SetHandler(&side_b_);
}

void Splice::Side::OnData(base::ByteSpan data) {
  *counter += data.size();
  other->Write(data);
  // The other side cannot keep up: stop reading until its queue drains.
  if (other->WriteQueueSize() > splice->high_water_ && !peer->paused_other) {
    peer->paused_other = true;
    self->PauseReading();
  }
}

void Splice::Side::OnWriteDrained() {
  // Our stream's queue emptied: the peer's stream, which feeds it, may read again.
  if (paused_other) {
    paused_other = false;
    other->ResumeReading();
  }
  splice->MaybeFinish();
}

void Splice::Side::OnEnd() {
  ended = true;
  other->Shutdown();
  splice->MaybeFinish();
}

void Splice::Side::OnError(const absl::Status& status) { splice->Finish(status); }

void Splice::MaybeFinish() {
  if (side_a_.ended && side_b_.ended && a_->WriteQueueSize() == 0 && b_->WriteQueueSize() == 0) {
    Finish(absl::OkStatus());
  }
}

void Splice::Abort(const absl::Status& why) {
  if (finished_) return;
  a_->Reset();
  Finish(why);
}

void Splice::Finish(const absl::Status& status) {
  if (finished_) return;
  finished_ = true;
  a_->Close();
  b_->Close();
  if (done_) done_(this, stats_, status);
}

}  // namespace p2proxy::proxy
