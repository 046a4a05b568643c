#include <catch2/catch.hpp>
#include <unistd.h>
#include <zlib.h>

#include <memory>
#include <string>

#include "core/elf.h"
#include "core/pprof.h"
#include "core/util.h"
#include "profile.pb.h"

using namespace lockkit;
namespace pb = perftools::profiles;

namespace {

std::string gunzip(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
  std::string out;
  char buf[4096];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
    out.append(buf, sizeof(buf) - z.avail_out);
  } while (rc != Z_STREAM_END);
  inflateEnd(&z);
  return out;
}

pb::Profile decode(const ProfileData& d) {
  pb::Profile p;
  REQUIRE(p.ParseFromString(encode_profile(d)));
  return p;
}

Frame code_frame(uint64_t addr, std::string fn, std::shared_ptr<const MappedModule> m) {
  Frame f;
  f.addr = addr;
  f.function = std::move(fn);
  f.mapping = std::move(m);
  f.module = f.mapping ? basename_of(f.mapping->path) : "";
  return f;
}

ProfileData two_samples() {
  ProfileData d;
  d.sample_types = {{"contentions", "count"}, {"delay", "nanoseconds"}};
  d.default_sample_type = "delay";
  ProfileSample a;
  a.values = {3, 3000};
  a.frames = {named_frame("leaf_fn", "[kernel.kallsyms]"), named_frame("caller_fn", "[kernel.kallsyms]")};
  a.label("lock", "orders_lock").label("tid", 42);
  ProfileSample b;
  b.values = {1, 500};
  b.frames = {named_frame("leaf_fn", "[kernel.kallsyms]"), named_frame("other_fn", "[kernel.kallsyms]")};
  b.label("lock", "#1").label("tid", 43, "thread");
  d.samples = {a, b};
  return d;
}

}  // namespace

TEST_CASE("pprof profile is one gzip member holding the serialized message") {
  ProfileData d = two_samples();
  std::string raw = encode_profile(d);
  std::string gz = gzip_bytes(raw);
  REQUIRE(gz.size() > 2);
  CHECK(uint8_t(gz[0]) == 0x1f);
  CHECK(uint8_t(gz[1]) == 0x8b);
  CHECK(gunzip(gz) == raw);
}

TEST_CASE("pprof string table starts empty and holds each string once") {
  pb::Profile p = decode(two_samples());
  REQUIRE(p.string_table_size() > 0);
  CHECK(p.string_table(0).empty());
  std::set<std::string> seen;
  for (auto& s : p.string_table()) CHECK(seen.insert(s).second);
  CHECK(p.string_table(p.default_sample_type()) == "delay");
  REQUIRE(p.sample_type_size() == 2);
  CHECK(p.string_table(p.sample_type(0).type()) == "contentions");
  CHECK(p.string_table(p.sample_type(1).unit()) == "nanoseconds");
}

TEST_CASE("pprof samples keep values and leaf-first stacks and labels of both kinds") {
  pb::Profile p = decode(two_samples());
  REQUIRE(p.sample_size() == 2);
  auto fn_name = [&](uint64_t loc_id) {
    const pb::Location& l = p.location(int(loc_id - 1));
    REQUIRE(l.id() == loc_id);
    const pb::Function& f = p.function(int(l.line(0).function_id() - 1));
    return p.string_table(f.name());
  };
  const pb::Sample& a = p.sample(0);
  CHECK(a.value(0) == 3);
  CHECK(a.value(1) == 3000);
  REQUIRE(a.location_id_size() == 2);
  CHECK(fn_name(a.location_id(0)) == "leaf_fn");
  CHECK(fn_name(a.location_id(1)) == "caller_fn");
  // The shared leaf is one location and one function.
  CHECK(p.sample(1).location_id(0) == a.location_id(0));
  CHECK(p.function_size() == 3);
  REQUIRE(a.label_size() == 2);
  CHECK(p.string_table(a.label(0).key()) == "lock");
  CHECK(p.string_table(a.label(0).str()) == "orders_lock");
  CHECK(p.string_table(a.label(1).key()) == "tid");
  CHECK(a.label(1).num() == 42);
  CHECK(a.label(1).str() == 0);
  CHECK(p.string_table(p.sample(1).label(1).num_unit()) == "thread");
  // Frames named by a module only share one mapping of that name, without a range.
  REQUIRE(p.mapping_size() == 1);
  CHECK(p.string_table(p.mapping(0).filename()) == "[kernel.kallsyms]");
  CHECK(p.mapping(0).memory_limit() == 0);
  CHECK(p.mapping(0).has_functions());
}

TEST_CASE("pprof mapping of a module without an ELF file takes its build-id and range as given") {
  // The kernel image: no file to read, a build-id from its notes.
  auto kernel = std::make_shared<MappedModule>();
  kernel->path = "[kernel.kallsyms]";
  kernel->lo = 0xffffffff81000000ull;
  kernel->hi = 0xffffffff82000000ull;
  kernel->build_id = "4a5a9b0a";
  ProfileData d;
  d.sample_types = {{"delay", "nanoseconds"}};
  ProfileSample s;
  s.values = {7};
  s.frames = {code_frame(0xffffffff81000110ull, "mutex_lock", kernel)};
  d.samples = {s};
  pb::Profile p = decode(d);
  REQUIRE(p.mapping_size() == 1);
  const pb::Mapping& m = p.mapping(0);
  CHECK(p.string_table(m.filename()) == "[kernel.kallsyms]");
  CHECK(p.string_table(m.build_id()) == "4a5a9b0a");
  CHECK(m.memory_start() == 0xffffffff81000000ull);
  CHECK(m.memory_limit() == 0xffffffff82000000ull);
  CHECK(m.file_offset() == 0);
  CHECK(m.has_functions());
  CHECK_FALSE(m.has_filenames());
  REQUIRE(p.location_size() == 1);
  CHECK(p.location(0).mapping_id() == m.id());
  CHECK(p.location(0).address() == 0xffffffff81000110ull);
}

TEST_CASE("pprof mappings carry the path and range and build-id of modules with the traced program first") {
  // This test binary and the library it is linked with, as two modules of one process.
  std::string self = readlink_str("/proc/self/exe");
  auto exe = std::make_shared<MappedModule>();
  exe->path = self;
  exe->elf = ElfFile::open_cached(self);
  exe->lo = 0x555500000000;
  exe->hi = 0x555500100000;
  exe->bias = exe->lo - exe->elf->min_vaddr();
  auto lib = std::make_shared<MappedModule>(*exe);
  lib->path = "/lib/libother.so";
  lib->lo = 0x7f0000000000;
  lib->hi = 0x7f0000010000;
  ProfileData d;
  d.sample_types = {{"delay", "nanoseconds"}};
  d.main_binary = self;
  ProfileSample s;
  s.values = {7};
  s.frames = {code_frame(0x7f0000000100, "in_lib", lib), code_frame(0x555500000200, "in_exe", exe),
              code_frame(0x9000, "", nullptr)};
  d.samples = {s};
  pb::Profile p = decode(d);
  REQUIRE(p.mapping_size() == 2);
  const pb::Mapping& first = p.mapping(0);
  CHECK(p.string_table(first.filename()) == self);
  CHECK(first.memory_start() == exe->lo);
  CHECK(first.memory_limit() == exe->hi);
  CHECK(!exe->elf->build_id().empty());
  CHECK(p.string_table(first.build_id()) == exe->elf->build_id());
  CHECK(p.string_table(p.mapping(1).filename()) == "/lib/libother.so");
  REQUIRE(p.location_size() == 3);
  CHECK(p.location(0).address() == 0x7f0000000100);
  CHECK(p.location(0).mapping_id() == 2);
  CHECK(p.location(1).mapping_id() == 1);
  // An unresolved address outside every module: a location with no line and no mapping.
  CHECK(p.location(2).mapping_id() == 0);
  CHECK(p.location(2).line_size() == 0);
}

TEST_CASE("pprof sample with a value per sample type only") {
  ProfileData d = two_samples();
  d.samples[0].values.push_back(1);
  CHECK_THROWS_AS(encode_profile(d), ToolError);
}

TEST_CASE("pprof profile written through an output file replaces it only on commit") {
  char dir[] = "/tmp/lockkit-pprof-test-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string path = std::string(dir) + "/p.pb.gz";
  {
    OutputFile out(path);
    write_profile(out, two_samples());
  }
  auto text = read_file(path);
  REQUIRE(text);
  pb::Profile p;
  REQUIRE(p.ParseFromString(gunzip(*text)));
  CHECK(p.sample_size() == 2);
  ::unlink(path.c_str());
  ::rmdir(dir);
}
