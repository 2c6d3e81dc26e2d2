// One JSON object per line per data chunk; the payload base64-encoded.
#pragma once

#include <string>

#include "sink/output.h"
#include "sink/sink.h"

namespace tlstap {

std::string format_json_record(const DataRecord& record);

class JsonSink : public Sink {
 public:
  explicit JsonSink(Output& out) : out_(out) {}
  void write(const DataRecord& record) override;
  void flush() override { out_.flush(); }

 private:
  Output& out_;
};

}  // namespace tlstap
