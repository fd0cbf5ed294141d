// mmdb.cpp — see mmdb.hpp. The perl script gets the records as arguments (cidr, country,
// registered country, three per network), so no test data is ever pasted into perl source.
#include "support/mmdb.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include "support/temp_dir.hpp"

extern char** environ;

namespace saslguard::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPerl = "/usr/bin/perl";

// Type callback: the writer must be told how to encode every map key. remove_reserved_networks
// defaults to true and would silently drop 10.0.0.0/8 and friends; alias_ipv6_to_ipv4 makes
// IPv4 and ::ffff:a.b.c.d lookups work in the IPv6 tree (and forbids inserts into 2001::/32,
// 2002::/16 and ::ffff:0:0/96, which die with "Attempted to overwrite an aliased network").
constexpr const char* kWriterScript = R"perl(
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($out, $database_type, @records) = @ARGV;
my %types = (country => 'map', registered_country => 'map', iso_code => 'utf8_string',
             names => 'map', en => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
  ip_version => 6,
  record_size => 28,
  database_type => $database_type,
  languages => ['en'],
  description => { en => 'saslguard test database' },
  map_key_type_callback => sub { $types{ $_[0] } // die "no type for map key $_[0]\n" },
  remove_reserved_networks => 0,
  alias_ipv6_to_ipv4 => 1);
while (@records) {
  my ($cidr, $country, $registered) = splice(@records, 0, 3);
  my %data;
  $data{country} = { iso_code => $country, names => { en => $country } } if length $country;
  $data{registered_country} = { iso_code => $registered, names => { en => $registered } }
    if length $registered;
  $tree->insert_network($cidr, \%data);
}
open my $fh, '>:raw', $out or die "cannot write $out: $!\n";
$tree->write_tree($fh);
close $fh or die "cannot write $out: $!\n";
)perl";

void writeFile(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// A name in the same directory (rename must not cross file systems), unique per process/call.
fs::path siblingTempName(const fs::path& out) {
  static std::atomic<unsigned> counter{0};
  return out.parent_path() / ("." + out.filename().string() + ".tmp-" + std::to_string(::getpid()) +
                              "-" + std::to_string(counter++));
}

void renameOver(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::rename(from, to, error);
  if (error) {
    fs::remove(from, error);
    throw std::runtime_error("cannot rename over " + to.string());
  }
}

}  // namespace

MmdbNetworks defaultTestNetworks() {
  return {
      {std::string(kGbNetwork), "GB"},   {std::string(kGbNetwork2), "GB"},
      {std::string(kSeNetwork), "SE"},   {std::string(kCnNetwork), "CN"},
      {std::string(kUsNetwork), "US"},   {std::string(kNoV6Network), "NO"},
      {std::string(kJpV6Network), "JP"},
  };
}

void writeMmdb(const fs::path& out, const MmdbNetworks& networks,
               const std::string& database_type) {
  std::vector<MmdbRecord> records;
  records.reserve(networks.size());
  for (const auto& [cidr, code] : networks) records.push_back({cidr, code, code});
  writeMmdbRecords(out, records, database_type);
}

void writeMmdbRecords(const fs::path& out, const std::vector<MmdbRecord>& records,
                      const std::string& database_type) {
  TempDir work;
  const fs::path script = work / "write-mmdb.pl";
  const fs::path errors = work / "stderr";
  writeFile(script, kWriterScript);

  std::vector<std::string> arguments{kPerl, script.string(), out.string(), database_type};
  for (const auto& record : records) {
    arguments.insert(arguments.end(),
                     {record.cidr, record.country_iso_code, record.registered_country_iso_code});
  }
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int spawn_error = ::posix_spawn(&pid, kPerl, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    throw std::runtime_error(std::string("cannot start ") + kPerl + ": " +
                             std::generic_category().message(spawn_error));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("writing " + out.string() +
                             " with MaxMind::DB::Writer failed: " + readWholeFile(errors));
  }
}

void writeMmdbAtomically(const fs::path& out, const MmdbNetworks& networks,
                         const std::string& database_type) {
  const fs::path temporary = siblingTempName(out);
  try {
    writeMmdb(temporary, networks, database_type);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  renameOver(temporary, out);
}

void replaceAtomically(const fs::path& source, const fs::path& out) {
  const fs::path temporary = siblingTempName(out);
  std::error_code error;
  fs::copy_file(source, temporary, fs::copy_options::overwrite_existing, error);
  if (error) throw std::runtime_error("cannot copy " + source.string() + ": " + error.message());
  renameOver(temporary, out);
}

void writeGarbageAtomically(const fs::path& out, std::string_view content) {
  const fs::path temporary = siblingTempName(out);
  writeFile(temporary, content);
  renameOver(temporary, out);
}

}  // namespace saslguard::testing
