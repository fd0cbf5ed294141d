// files_test.cpp — secrets and lists read from files, and whole-file replacement that a reader
// or a crash never sees half done.
#include "common/files.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "support/temp_dir.hpp"

namespace saslguard {
namespace {

using testing::TempDir;

std::string contents(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(Files, ReadLinesSkipsBlankLinesAndTrims) {
  TempDir dir;
  std::ofstream(dir / "tokens") << "  one \n\n\ttwo\n   \nthree";
  auto lines = readLines((dir / "tokens").string(), "admin.bearer_tokens_file");
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_EQ(*lines, (std::vector<std::string>{"one", "two", "three"}));
  auto missing = readLines((dir / "none").string(), "admin.bearer_tokens_file");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("admin.bearer_tokens_file: cannot read"),
            std::string::npos);
}

TEST(Files, WriteFileAtomicallyReplacesAndKeepsThePermissions) {
  TempDir dir;
  const auto path = dir / "custom.json";
  ASSERT_TRUE(writeFileAtomically(path.string(), "first"));
  EXPECT_EQ(contents(path), "first");
  struct stat created {};
  ASSERT_EQ(::stat(path.c_str(), &created), 0);
  EXPECT_EQ(created.st_mode & 0777, 0644u);

  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  struct stat before {};
  ::stat(path.c_str(), &before);
  ASSERT_TRUE(writeFileAtomically(path.string(), "second, longer"));
  EXPECT_EQ(contents(path), "second, longer");
  struct stat after {};
  ::stat(path.c_str(), &after);
  EXPECT_EQ(after.st_mode & 0777, 0640u);
  EXPECT_NE(after.st_ino, before.st_ino) << "a new file renamed over the old one";
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++files;
  }
  EXPECT_EQ(files, 1u) << "no temporary file left behind";
}

TEST(Files, WriteFileAtomicallyFailsCleanlyWhereItCannotWrite) {
  auto failed = writeFileAtomically("/nonexistent-directory/custom.json", "x");
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("/nonexistent-directory"), std::string::npos);
}

}  // namespace
}  // namespace saslguard
