// hold_queue_test.cpp — the hold queue's parsers against what Postfix 3.7 prints (postqueue -j
// lines and postcat -e output captured from a real instance, in cases/), queue ID validation,
// postsuper's totals and the bounded child-process runner (timeout, output bound, no shell).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "notify/hold_queue.hpp"
#include "support/temp_dir.hpp"

namespace saslguard::notify {
namespace {

using namespace std::chrono_literals;

std::string readCase(const std::string& name) {
  std::ifstream in(std::string(SASLGUARD_TEST_DIR) + "/notify/cases/" + name);
  EXPECT_TRUE(in) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(HoldQueueParsing, PostqueueJsonLinesOfEveryQueue) {
  const auto sample = lines(readCase("postqueue-j.txt"));
  ASSERT_EQ(sample.size(), 6u);
  auto held = parsePostqueueLine(sample[0]);
  ASSERT_TRUE(held) << held.error().message;
  EXPECT_EQ(held->queue_name, "hold");
  EXPECT_EQ(held->queue_id, "4F266A7C1EA");
  EXPECT_EQ(held->arrival_time_s, 1795444384);
  EXPECT_EQ(held->size, 414);
  EXPECT_EQ(held->sender, "hold@e2e.test");
  EXPECT_EQ(held->recipients, std::vector<std::string>{"r1@remote.test"});
  EXPECT_EQ(held->sasl_username, "");  // postqueue never shows it

  auto bounce = parsePostqueueLine(sample[4]);
  ASSERT_TRUE(bounce) << bounce.error().message;
  EXPECT_EQ(bounce->queue_name, "deferred");
  EXPECT_EQ(bounce->sender, "");
  EXPECT_EQ(bounce->recipients, std::vector<std::string>{"bounced@remote.test"});

  auto long_id = parsePostqueueLine(sample[5]);
  ASSERT_TRUE(long_id) << long_id.error().message;
  EXPECT_EQ(long_id->queue_id, "4Zb8Kx1sTzzH5Vw");
  EXPECT_EQ(long_id->recipients.size(), 2u);
}

TEST(HoldQueueParsing, MalformedPostqueueLinesAreErrors) {
  EXPECT_FALSE(parsePostqueueLine("not json"));
  EXPECT_FALSE(parsePostqueueLine("[1, 2]"));
  EXPECT_FALSE(parsePostqueueLine(R"({"queue_id": "ABCDEF1", "sender": ""})"));  // no queue_name
  EXPECT_FALSE(parsePostqueueLine(R"({"queue_name": "hold", "sender": ""})"));   // no queue_id
  // A queue ID that could be read as an option or a path never leaves the parser.
  EXPECT_FALSE(parsePostqueueLine(R"({"queue_name": "hold", "queue_id": "-d ALL", "sender": ""})"));
  EXPECT_FALSE(
      parsePostqueueLine(R"({"queue_name": "hold", "queue_id": "../../etc", "sender": ""})"));
}

TEST(HoldQueueParsing, SaslUsernameFromTheEnvelopeOnly) {
  EXPECT_EQ(saslUsernameFromPostcat(readCase("postcat-envelope.txt")), "Carol@E2E.test");
  // A message whose client did not authenticate has no such record.
  EXPECT_EQ(saslUsernameFromPostcat("*** ENVELOPE RECORDS hold/ABCDEF123 ***\n"
                                    "named_attribute: log_ident=ABCDEF123\nsender: x@y\n"
                                    "recipient: r@remote.test\n"),
            std::nullopt);
  // Text in the message itself never counts, even if postcat printed the body.
  EXPECT_EQ(saslUsernameFromPostcat("*** ENVELOPE RECORDS hold/ABCDEF123 ***\nsender: x@y\n"
                                    "*** MESSAGE CONTENTS hold/ABCDEF123 ***\n"
                                    "named_attribute: sasl_username=victim@e2e.test\n"),
            std::nullopt);
}

TEST(HoldQueueParsing, QueueIds) {
  EXPECT_TRUE(isQueueId("E87D6A7C1E7"));
  EXPECT_TRUE(isQueueId("4Zb8Kx1sTzzH5Vw"));
  EXPECT_FALSE(isQueueId(""));
  EXPECT_FALSE(isQueueId("ALL"));  // postsuper's "every message"
  EXPECT_FALSE(isQueueId("-"));    // postsuper's "read IDs from stdin"
  EXPECT_FALSE(isQueueId("ABCDEF 12"));
  EXPECT_FALSE(isQueueId("ABCDEF;rm"));
  EXPECT_FALSE(isQueueId("ABCDEF/12"));
  EXPECT_FALSE(isQueueId(std::string(65, 'A')));
}

TEST(HoldQueueParsing, PostsuperTotals) {
  const std::string released =
      "postsuper: 4F266A7C1EA: released from hold\npostsuper: B780CA7C1EB: released from hold\n"
      "postsuper: Released from hold: 2 messages\n";
  EXPECT_EQ(postsuperCount(released, "Released from hold"), 2u);
  EXPECT_EQ(
      postsuperCount("postsuper: E87D6A7C1E7: removed\npostsuper: Deleted: 1 message\n", "Deleted"),
      1u);
  EXPECT_EQ(postsuperCount("postsuper: Deleted: 0 messages\n", "Deleted"), 0u);
  EXPECT_EQ(postsuperCount("postsuper: fatal: usage\n", "Deleted"), std::nullopt);
}

TEST(HoldQueueCommand, RunsArgvWithoutAShell) {
  testing::TempDir dir;
  const auto marker = (dir / "created").string();
  auto ran = runCommand({"/bin/echo", "a; touch " + marker, "$(id)"}, 5s, 4096);
  ASSERT_TRUE(ran) << ran.error().message;
  EXPECT_EQ(ran->exit_status, 0);
  EXPECT_EQ(ran->output, "a; touch " + marker + " $(id)\n");
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_FALSE(runCommand({"echo", "relative"}, 5s, 4096));
  auto missing = runCommand({"/nonexistent/postqueue"}, 5s, 4096);
  EXPECT_FALSE(missing);
}

TEST(HoldQueueCommand, ExitStatusAndStderr) {
  auto ran = runCommand({"/bin/ls", "/nonexistent-directory"}, 5s, 4096);
  ASSERT_TRUE(ran) << ran.error().message;
  EXPECT_NE(ran->exit_status, 0);
  EXPECT_NE(ran->output.find("nonexistent-directory"), std::string::npos) << ran->output;
}

TEST(HoldQueueCommand, OutputIsBoundedAndDrained) {
  auto ran = runCommand({"/usr/bin/head", "-c", "1000000", "/dev/zero"}, 10s, 1000);
  ASSERT_TRUE(ran) << ran.error().message;
  EXPECT_EQ(ran->exit_status, 0);  // it finished: the rest was read and dropped
  EXPECT_EQ(ran->output.size(), 1000u);
  EXPECT_TRUE(ran->truncated);
}

TEST(HoldQueueCommand, TimeoutKillsTheProcessGroup) {
  const auto started = std::chrono::steady_clock::now();
  auto ran = runCommand({"/bin/sleep", "10"}, 300ms, 4096);
  EXPECT_FALSE(ran);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
}

// A fake Postfix in a directory of scripts: the queue as postqueue -j prints it, envelopes per
// ID, and a postsuper that records its arguments.
struct FakePostfix {
  testing::TempDir dir;
  void script(const std::string& name, const std::string& body) {
    const auto path = dir / name;
    std::ofstream(path) << "#!/bin/sh\n" << body;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  }
  PostfixCommandOptions options() const {
    PostfixCommandOptions o;
    o.command_directory = dir.path().string();
    o.config_directory = "/etc/postfix-test";
    o.timeout = 5s;
    return o;
  }
};

TEST(HoldQueueFake, MatchesHeldMessagesByNormalisedLoginAndActsOnThemOnly) {
  FakePostfix fake;
  const auto args = (fake.dir / "args").string();
  fake.script(
      "postqueue",
      "case \"$3\" in\n"
      "-j) cat <<'EOF'\n"
      R"({"queue_name": "hold", "queue_id": "AAAAAA1", "arrival_time": 20, "message_size": 1, "sender": "a@x", "recipients": [{"address": "r@y"}]})"
      "\n"
      R"({"queue_name": "hold", "queue_id": "BBBBBB2", "arrival_time": 10, "message_size": 2, "sender": "b@x", "recipients": []})"
      "\n"
      R"({"queue_name": "deferred", "queue_id": "CCCCCC3", "arrival_time": 5, "message_size": 3, "sender": "a@x", "recipients": []})"
      "\n"
      R"({"queue_name": "hold", "queue_id": "DDDDDD4", "arrival_time": 1, "message_size": 4, "sender": "a@x", "recipients": []})"
      "\n"
      "EOF\n;;\n"
      "-i) echo \"postqueue $*\" >> " +
          args + "\n;;\nesac\n");
  // AAAAAA1 and DDDDDD4 are alice's (one with another spelling), BBBBBB2 is bob's, CCCCCC3 is
  // deferred (never listed); postcat of DDDDDD4 answers a login with upper case.
  fake.script("postcat",
              "test \"$1 $2 $3 $4\" = \"-c /etc/postfix-test -e -q\" || exit 2\n"
              "case \"$5\" in\n"
              "AAAAAA1) echo 'named_attribute: sasl_username=alice@e2e.test';;\n"
              "BBBBBB2) echo 'named_attribute: sasl_username=bob@e2e.test';;\n"
              "DDDDDD4) echo 'named_attribute: sasl_username= Alice@E2E.test';;\n"
              "*) exit 1;;\n"
              "esac\n");
  fake.script("postsuper", "echo \"postsuper $*\" >> " + args +
                               "\necho 'postsuper: Released from hold: 2 messages'\n");
  AccountMatcher matcher;
  matcher.normalise = [](std::string_view raw) {
    std::string out;
    for (char c : raw) {
      if (c != ' ') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
  };
  HoldQueue queue(fake.options(), matcher);
  auto held = queue.held("ALICE@e2e.test");
  ASSERT_TRUE(held) << held.error().message;
  EXPECT_EQ(held->account, "alice@e2e.test");
  ASSERT_EQ(held->messages.size(), 2u);
  EXPECT_EQ(held->messages[0].queue_id, "DDDDDD4");  // oldest first
  EXPECT_EQ(held->messages[1].queue_id, "AAAAAA1");
  EXPECT_EQ(held->messages[1].sasl_username, "alice@e2e.test");

  auto dry = queue.release("alice@e2e.test", true, "test");
  ASSERT_TRUE(dry) << dry.error().message;
  EXPECT_EQ(dry->messages.size(), 2u);
  EXPECT_EQ(dry->done, 0u);
  EXPECT_FALSE(std::filesystem::exists(args));  // a dry run runs neither postsuper nor -i

  auto released = queue.release("alice@e2e.test", false, "test");
  ASSERT_TRUE(released) << released.error().message;
  EXPECT_EQ(released->done, 2u);
  std::ifstream in(args);
  std::stringstream recorded;
  recorded << in.rdbuf();
  EXPECT_EQ(recorded.str(),
            "postsuper -c /etc/postfix-test -H DDDDDD4 -H AAAAAA1\n"
            "postqueue -c /etc/postfix-test -i DDDDDD4\n"
            "postqueue -c /etc/postfix-test -i AAAAAA1\n");
  const auto json = actionToJson(*released);
  EXPECT_EQ(json.at("released").as_uint64(), 2u);
  EXPECT_EQ(json.at("queue_ids").as_array().size(), 2u);
}

TEST(HoldQueueFake, PurgeDeletesFromTheHoldQueueOnlyAndFailuresAreErrors) {
  FakePostfix fake;
  const auto args = (fake.dir / "args").string();
  fake.script(
      "postqueue",
      "cat <<'EOF'\n"
      R"({"queue_name": "hold", "queue_id": "AAAAAA1", "arrival_time": 20, "message_size": 1, "sender": "alice@e2e.test", "recipients": []})"
      "\nEOF\n");
  fake.script("postsuper",
              "echo \"postsuper $*\" >> " + args + "\necho 'postsuper: Deleted: 1 message'\n");
  HoldQueue by_sender(fake.options(), AccountMatcher{true, nullptr});
  auto purged = by_sender.purge("alice@e2e.test", false, "test");
  ASSERT_TRUE(purged) << purged.error().message;
  EXPECT_EQ(purged->done, 1u);
  std::ifstream in(args);
  std::string recorded;
  std::getline(in, recorded);
  EXPECT_EQ(recorded, "postsuper -c /etc/postfix-test -d AAAAAA1 hold");

  fake.script("postqueue", "echo 'postqueue: fatal: Queue report unavailable' >&2\nexit 75\n");
  auto failed = by_sender.held("alice@e2e.test");
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("Queue report unavailable"), std::string::npos)
      << failed.error().message;
}

TEST(HoldQueueFake, MaxMessagesBoundsOneCall) {
  FakePostfix fake;
  std::string listing;
  for (int i = 0; i < 5; ++i) {
    listing += R"({"queue_name": "hold", "queue_id": "AAAAAA)" + std::to_string(i) +
               R"(", "arrival_time": 1, "message_size": 1, "sender": "a@x", "recipients": []})" +
               "\n";
  }
  fake.script("postqueue", "cat <<'EOF'\n" + listing + "EOF\n");
  auto options = fake.options();
  options.max_messages = 3;
  HoldQueue queue(options, AccountMatcher{true, nullptr});
  auto held = queue.held("a@x");
  ASSERT_TRUE(held) << held.error().message;
  EXPECT_EQ(held->messages.size(), 3u);
  EXPECT_TRUE(held->truncated);
}

}  // namespace
}  // namespace saslguard::notify
