// One JSON object per line: "data" per chunk (the payload base64-encoded),
// "close" when a connection ends, "http" per exchange (headers, body sizes and
// the first bytes of bodies), "websocket" per WebSocket message.
#pragma once

#include <string>

#include "sink/output.h"
#include "sink/sink.h"

namespace tlstap {

std::string format_json_record(const DataRecord& record);
std::string format_json_exchange(const ExchangeRecord& record, bool show_secrets);
std::string format_json_close(const CloseRecord& record);
std::string format_json_websocket(const WebSocketRecord& record);

class JsonSink : public Sink {
 public:
  JsonSink(Output& out, bool show_secrets) : out_(out), show_secrets_(show_secrets) {}
  void write(const DataRecord& record) override;
  void write_exchange(const ExchangeRecord& record) override;
  void write_close(const CloseRecord& record) override;
  void write_websocket(const WebSocketRecord& record) override;
  void flush() override { out_.flush(); }

 private:
  void emit_line();

  Output& out_;
  bool show_secrets_;
  std::string line_;
};

}  // namespace tlstap
