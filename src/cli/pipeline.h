// What happens to a data chunk once it is attributed, in a live capture and in
// a replay alike: written to the sinks the user chose, and turned into HTTP
// exchanges that go to the same sinks.
#pragma once

#include <memory>
#include <vector>

#include "cli/options.h"
#include "common/result.h"
#include "conn/exchange_tracker.h"
#include "sink/output.h"
#include "sink/sink.h"

namespace tlstap {

class Pipeline {
 public:
  // Opens every destination the options name; `extra` (e.g. the live view)
  // joins them.
  static Result<std::unique_ptr<Pipeline>> open(const Options& options,
                                                std::vector<std::unique_ptr<Sink>> extra = {});

  void write(const DataRecord& record);
  // The connection closed: its exchanges end, the close is written with the
  // data, and pcapng lets its flows go.
  void end_connection(const CloseRecord& record);
  void forget_process(uint32_t pid);
  void flush();
  // The end: connections still open report what they hold.
  void finish();
  bool failed() const { return text_output_ && text_output_->failed(); }
  const ExchangeTrackerStats& exchange_stats() const { return tracker_.stats(); }

 private:
  Pipeline(const Options& options);
  template <class Write>
  void to_protocol_sinks(Write write);

  bool data_events_;
  bool http_events_;
  bool track_exchanges_;
  std::unique_ptr<Output> text_output_;  // on the heap: sinks keep a reference
  std::vector<std::unique_ptr<Sink>> sinks_;
  Sink* text_sink_ = nullptr;  // the text or JSON sink, which --events applies to
  ExchangeTracker tracker_;
};

}  // namespace tlstap
