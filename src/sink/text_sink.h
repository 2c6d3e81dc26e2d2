// Human-readable output: a header line per chunk, then the payload as text
// when it is printable, as a hexdump otherwise.
#pragma once

#include <span>
#include <string>

#include "sink/output.h"
#include "sink/sink.h"

namespace tlstap {

std::string format_text_record(const DataRecord& record);
bool is_printable_text(std::span<const std::byte> bytes);
std::string hexdump(std::span<const std::byte> bytes);

class TextSink : public Sink {
 public:
  explicit TextSink(Output& out) : out_(out) {}
  void write(const DataRecord& record) override { out_.write(format_text_record(record)); }
  void flush() override { out_.flush(); }

 private:
  Output& out_;
};

}  // namespace tlstap
