#include "cli/pipeline.h"

#include "sink/json_sink.h"
#include "sink/pcapng_sink.h"
#include "sink/text_sink.h"

namespace tlstap {

Pipeline::Pipeline(const Options& options)
    : data_events_(options.data_events),
      http_events_(options.http_events),
      track_exchanges_(options.http_events || options.command == Command::top),
      tracker_(
          ExchangeTrackerLimits{.max_body_bytes = options.max_body_bytes,
                                .decode_bodies = options.command != Command::top},
          [this](const ExchangeRecord& r) { to_protocol_sinks([&](Sink& sink) { sink.write_exchange(r); }); },
          [this](const WebSocketRecord& r) {
            to_protocol_sinks([&](Sink& sink) { sink.write_websocket(r); });
          }) {}

// --events chooses whether the text or JSON output gets what the protocol layer makes.
template <class Write>
void Pipeline::to_protocol_sinks(Write write) {
  for (auto& sink : sinks_)
    if (sink.get() != text_sink_ || http_events_) write(*sink);
}

Result<std::unique_ptr<Pipeline>> Pipeline::open(const Options& options,
                                                 std::vector<std::unique_ptr<Sink>> extra) {
  std::unique_ptr<Pipeline> pipeline(new Pipeline(options));
  // `-w -` alone sends pcapng to stdout, and the live view owns the terminal:
  // then the text output has no place unless -o names one.
  bool stdout_taken = options.pcap_path == "-" || options.command == Command::top;
  if (!stdout_taken || !(options.output_path.empty() || options.output_path == "-")) {
    auto output = Output::open(options.output_path);
    if (!output) return output.error();
    pipeline->text_output_ = std::make_unique<Output>(std::move(*output));
    if (options.format == OutputFormat::json)
      pipeline->sinks_.push_back(std::make_unique<JsonSink>(*pipeline->text_output_, options.show_secrets));
    else
      pipeline->sinks_.push_back(std::make_unique<TextSink>(
          *pipeline->text_output_,
          TextOptions{.details = options.verbose, .show_secrets = options.show_secrets}));
    pipeline->text_sink_ = pipeline->sinks_.back().get();
  }
  if (!options.pcap_path.empty()) {
    auto pcap = PcapngSink::open({options.pcap_path, options.pcap_mode, uint64_t{options.rotate_mib} << 20,
                                  options.keep_files,
                                  // As the connection table: a connection the kernel forgot is kept.
                                  2 * size_t{options.max_connections}});
    if (!pcap) return pcap.error();
    pipeline->sinks_.push_back(std::make_unique<PcapngSink>(std::move(*pcap)));
  }
  for (auto& sink : extra) pipeline->sinks_.push_back(std::move(sink));
  return pipeline;
}

void Pipeline::write(const DataRecord& record) {
  // --events chooses what the text or JSON output gets; pcapng always takes the data.
  for (auto& sink : sinks_)
    if (sink.get() != text_sink_ || data_events_) sink->write(record);
  if (track_exchanges_) tracker_.observe(record);
}

void Pipeline::end_connection(const CloseRecord& record) {
  for (auto& sink : sinks_)
    if (sink.get() != text_sink_ || data_events_) sink->write_close(record);
  tracker_.end_connection({record.pid, record.conn_uid});
}

void Pipeline::forget_process(uint32_t pid) {
  tracker_.forget_process(pid);
  for (auto& sink : sinks_) sink->forget_process(pid);
}

void Pipeline::flush() {
  for (auto& sink : sinks_) sink->flush();
}

void Pipeline::finish() {
  tracker_.finish_all();
  flush();
}

}  // namespace tlstap
