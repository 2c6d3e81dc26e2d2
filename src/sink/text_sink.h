// Human-readable output: a header line per chunk, then the payload as text
// when it is printable, as a hexdump otherwise; one line per HTTP exchange,
// with its headers and bodies below when details are asked for (a gRPC
// call's messages, each decoded, instead of its HTTP/2 body); one line per
// WebSocket message, its payload below when details are asked for.
#pragma once

#include <span>
#include <string>

#include "sink/output.h"
#include "sink/sink.h"

namespace tlstap {

struct TextOptions {
  bool details = false;  // headers and bodies under each exchange line
  bool show_secrets = false;
};

std::string format_text_record(const DataRecord& record);
std::string format_text_exchange(const ExchangeRecord& record, const TextOptions& options);
std::string format_text_websocket(const WebSocketRecord& record, const TextOptions& options);
bool is_printable_text(std::span<const std::byte> bytes);
std::string hexdump(std::span<const std::byte> bytes);

class TextSink : public Sink {
 public:
  TextSink(Output& out, TextOptions options) : out_(out), options_(options) {}
  void write(const DataRecord& record) override { out_.write(format_text_record(record)); }
  void write_exchange(const ExchangeRecord& record) override {
    out_.write(format_text_exchange(record, options_));
  }
  void write_websocket(const WebSocketRecord& record) override {
    out_.write(format_text_websocket(record, options_));
  }
  void flush() override { out_.flush(); }

 private:
  Output& out_;
  TextOptions options_;
};

}  // namespace tlstap
