// wan-serve against requests no frontend sends: traversal in /view, uploads and user data,
// oversized and malformed HTTP, broken WebSocket frames, slow clients, a token and a foreign
// Origin. Each must be refused with an HTTP error while the server keeps serving.
#include <sys/stat.h>

#include "media/image_file.h"
#include "media/video_writer.h"
#include "server/server_test_util.h"

namespace wan::server::testing {
namespace {

const std::string kPng = std::string("\x89PNG\r\n\x1a\n", 8) + "not really a picture";

// The server still answers after whatever the test did to it.
void expect_serving() { EXPECT_EQ(get("/prompt").status, 200); }

TEST(ServerView, RefusesEveryWayOutOfItsFolders) {
  const auto& folders = TestServer::shared().folders();
  std::ofstream(folders.output / "ok.png") << "fine";
  fs::create_directories(folders.output / "sub");
  std::ofstream(folders.output / "sub" / "in_sub.png") << "sub";
  std::error_code ec;
  fs::create_symlink("/etc/passwd", folders.output / "leak.png", ec);
  fs::create_directory_symlink("/etc", folders.output / "etc_link", ec);

  EXPECT_EQ(get("/view?filename=ok.png").body, "fine");  // type defaults to output
  EXPECT_EQ(get("/view?filename=in_sub.png&subfolder=sub").body, "sub");
  EXPECT_EQ(get("/view?filename=ok.png%20%5Boutput%5D&type=input").body, "fine");  // annotated
  EXPECT_EQ(get("/view?filename=../input/x.png").status, 400);
  EXPECT_EQ(get("/view?filename=%2Fetc%2Fpasswd").status, 400);
  EXPECT_EQ(get("/view?filename=sub%2Fin_sub.png").status, 400);
  // A subfolder out of the folder is 403, as in ComfyUI.
  EXPECT_EQ(get("/view?filename=passwd&subfolder=..%2F..%2F..%2Fetc").status, 403);
  EXPECT_EQ(get("/view?filename=passwd&subfolder=%2Fetc").status, 403);
  EXPECT_EQ(get("/view?filename=ok.png&subfolder=a%00b").status, 403);
  EXPECT_EQ(get("/view?filename=ok.png%00.txt").status, 400);
  EXPECT_EQ(get("/view?filename=ok.png&type=models").status, 400);
  EXPECT_EQ(get("/view?filename=leak.png").status, 403);  // symlink out of output/
  EXPECT_EQ(get("/view?filename=passwd&subfolder=etc_link").status, 403);
  EXPECT_EQ(get("/view?filename=missing.png").status, 404);
  EXPECT_EQ(get("/view?filename=sub").status, 404);  // a folder
  EXPECT_EQ(get("/view").status, 404);
  // A file a workflow wrote is never served as a page of this origin.
  std::ofstream(folders.output / "page.html") << "<script>alert(1)</script>";
  EXPECT_EQ(get("/view?filename=page.html").header("content-type"), "application/octet-stream");
  expect_serving();
}

TEST(ServerUpload, StoresInsideInputRenamesAndRefusesTraversal) {
  const auto& folders = TestServer::shared().folders();
  const Form first = multipart_form({}, "image", "cat.png", kPng);
  HttpReply reply = post("/upload/image", first.body, {{"Content-Type", first.content_type}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json(), json({{"name", "cat.png"}, {"subfolder", ""}, {"type", "input"}}));
  EXPECT_EQ(runner::testing::read_text(folders.input / "cat.png"), kPng);
  // The same bytes again: the same name; other bytes: a numbered name, as ComfyUI does.
  reply = post("/api/upload/image", first.body, {{"Content-Type", first.content_type}});
  EXPECT_EQ(reply.json()["name"], "cat.png");
  const Form other = multipart_form({}, "image", "cat.png", kPng + "2");
  reply = post("/upload/image", other.body, {{"Content-Type", other.content_type}});
  EXPECT_EQ(reply.json()["name"], "cat (1).png");
  const Form replace = multipart_form({{"overwrite", "true"}}, "image", "cat.png", "new");
  reply = post("/upload/image", replace.body, {{"Content-Type", replace.content_type}});
  EXPECT_EQ(reply.json()["name"], "cat.png");
  EXPECT_EQ(runner::testing::read_text(folders.input / "cat.png"), "new");
  const Form nested = multipart_form({{"subfolder", "pets/new"}, {"type", "temp"}}, "image",
                                     "dog.png", kPng);
  reply = post("/upload/image", nested.body, {{"Content-Type", nested.content_type}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_TRUE(fs::exists(folders.temp / "pets" / "new" / "dog.png"));

  std::error_code ec;
  fs::create_directory_symlink("/tmp", folders.input / "tmp_link", ec);
  const std::vector<std::pair<Form, int>> refused = {
      {multipart_form({}, "image", "../escape.png", kPng), 400},
      {multipart_form({}, "image", "", kPng), 400},
      {multipart_form({}, "image", std::string("a\0b.png", 7), kPng), 400},
      {multipart_form({{"subfolder", "../.."}}, "image", "x.png", kPng), 400},
      {multipart_form({{"subfolder", "/etc"}}, "image", "x.png", kPng), 400},
      {multipart_form({{"subfolder", "tmp_link"}}, "image", "x.png", kPng), 403},
      {multipart_form({{"type", "models"}}, "image", "x.png", kPng), 400},
      {multipart_form({{"image", "a field, not a file"}}, "", "", ""), 400},
  };
  for (const auto& [form, status] : refused) {
    reply = post("/upload/image", form.body, {{"Content-Type", form.content_type}});
    EXPECT_EQ(reply.status, status) << form.body.substr(0, 300) << " -> " << reply.body;
  }
  EXPECT_FALSE(fs::exists(folders.root / "escape.png"));
  EXPECT_FALSE(fs::exists("/tmp/x.png") && fs::is_regular_file(folders.input / "tmp_link" / "x.png"));
  // Not multipart at all, a boundary that never closes.
  EXPECT_EQ(post("/upload/image", "plain", {{"Content-Type", "text/plain"}}).status, 400);
  EXPECT_EQ(post("/upload/image", "--b\r\nContent-Disposition: form-data; name=\"image\"",
                 {{"Content-Type", "multipart/form-data; boundary=b"}})
                .status,
            400);
  // A mask names its original, which must exist inside a folder and be an image (cat.png holds
  // "new"); nothing is stored when it is not.
  const Form mask = multipart_form({{"original_ref", R"({"filename": "cat.png", "type": "input"})"}},
                                   "image", "mask.png", kPng);
  reply = post("/upload/mask", mask.body, {{"Content-Type", mask.content_type}});
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_NE(reply.body.find("cat.png"), std::string::npos) << reply.body;
  EXPECT_FALSE(fs::exists(folders.input / "mask.png"));
  const Form bad_mask = multipart_form(
      {{"original_ref", R"({"filename": "../../etc/passwd", "type": "input"})"}}, "image",
      "mask.png", kPng);
  EXPECT_EQ(post("/upload/mask", bad_mask.body, {{"Content-Type", bad_mask.content_type}}).status,
            400);
  expect_serving();
}

// ComfyUI's mask editor uploads the mask alone; what is stored under its name is the original
// image's pixels with the mask's alpha, which LoadImage then reads as the MASK (1 - alpha).
TEST(ServerUpload, MaskIsStoredAsTheOriginalWithTheMasksAlpha) {
  const auto& folders = TestServer::shared().folders();
  at::manual_seed(3);
  const at::Tensor original = at::randint(0, 256, {6, 4, 4}, at::kByte);
  const at::Tensor mask = at::cat({at::zeros({6, 4, 3}, at::kByte),
                                   at::randint(0, 256, {6, 4, 1}, at::kByte)}, -1);
  auto png = [](const at::Tensor& rgba) {
    const auto bytes = media::encode_rgba_png(rgba, "test image");
    return std::string(bytes.begin(), bytes.end());
  };
  const Form image = multipart_form({{"overwrite", "true"}}, "image", "masked.png", png(original));
  ASSERT_EQ(post("/upload/image", image.body, {{"Content-Type", image.content_type}}).status, 200);
  const Form upload = multipart_form(
      {{"original_ref", R"({"filename": "masked.png", "type": "input", "subfolder": ""})"},
       {"type", "input"}, {"overwrite", "true"}},
      "image", "clipspace-mask-1.png", png(mask));
  HttpReply reply = post("/upload/mask", upload.body, {{"Content-Type", upload.content_type}});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json()["name"], "clipspace-mask-1.png");
  const media::LoadedImage stored =
      media::load_image((folders.input / "clipspace-mask-1.png").string());
  ASSERT_TRUE(stored.has_alpha);
  const at::Tensor rgb = (stored.image[0] * 255).round().to(at::kByte);
  const at::Tensor alpha = ((1 - stored.mask[0]) * 255).round().to(at::kByte);
  EXPECT_TRUE(rgb.equal(original.narrow(2, 0, 3)));
  EXPECT_TRUE(alpha.equal(mask.select(2, 3)));

  // A mask of another size is refused, naming both sizes, and nothing is stored.
  const Form wrong = multipart_form(
      {{"original_ref", R"({"filename": "masked.png", "type": "input"})"}}, "image",
      "clipspace-mask-2.png", png(at::zeros({5, 4, 4}, at::kByte)));
  reply = post("/upload/mask", wrong.body, {{"Content-Type", wrong.content_type}});
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.body.find("4x5"), std::string::npos) << reply.body;
  EXPECT_FALSE(fs::exists(folders.input / "clipspace-mask-2.png"));
}

TEST(ServerUserData, RoundTripsWorkflowsAndSettingsInsideTheUserFolder) {
  const auto& folders = TestServer::shared().folders();
  const std::string workflow = R"({"nodes": [], "links": []})";
  HttpReply reply = post("/api/userdata/workflows%2Fmine.json?overwrite=true&full_info=true",
                         workflow);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json()["path"], "workflows/mine.json");
  EXPECT_EQ(runner::testing::read_text(folders.user / "default" / "workflows" / "mine.json"),
            workflow);
  EXPECT_EQ(get("/api/userdata/workflows%2Fmine.json").body, workflow);
  EXPECT_EQ(get("/api/userdata?dir=workflows").json(), json::array({"mine.json"}));
  const json info = get("/api/userdata?dir=workflows&recurse=true&full_info=true").json();
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0]["size"], workflow.size());
  const json listing = get("/api/v2/userdata?path=workflows").json();
  ASSERT_EQ(listing.size(), 1u);
  EXPECT_EQ(listing[0]["path"], "workflows/mine.json");
  EXPECT_EQ(listing[0]["type"], "file");
  EXPECT_EQ(post("/api/userdata/workflows%2Fmine.json?overwrite=false", "{}").status, 409);
  reply = post("/api/userdata/workflows%2Fmine.json/move/workflows%2Frenamed.json", "");
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json(), "workflows/renamed.json");
  EXPECT_EQ(http_request(port(), "DELETE", "/api/userdata/workflows%2Frenamed.json").status, 204);
  EXPECT_EQ(get("/api/userdata/workflows%2Frenamed.json").status, 404);
  EXPECT_EQ(get("/api/userdata?dir=nothing").status, 404);
  EXPECT_EQ(get("/api/userdata").status, 400);

  for (const char* name : {"..%2F..%2Fescape.json", "%2Fetc%2Fpasswd", "a%00b.json"})
    EXPECT_EQ(post(std::string("/api/userdata/") + name, "{}").status, 400) << name;
  EXPECT_EQ(get("/api/userdata?dir=..").status, 403);  // ComfyUI's "Invalid directory"
  EXPECT_EQ(get("/api/v2/userdata?path=..%2F..").status, 400);
  EXPECT_FALSE(fs::exists(folders.root / "escape.json"));

  // A new user starts with the two navigation values the frontend would otherwise fail to set.
  const json first = get("/api/settings").json();
  EXPECT_EQ(first, json({{"Comfy.Canvas.LeftMouseClickBehavior", "panning"},
                         {"Comfy.Canvas.MouseWheelScroll", "zoom"}}));
  EXPECT_EQ(post("/api/settings", R"({"Comfy.A": 1, "Comfy.B": "x"})").status, 200);
  EXPECT_EQ(post("/api/settings/Comfy.A", "2").status, 200);
  json expected = first;
  expected.update(json({{"Comfy.A", 2}, {"Comfy.B", "x"}}));
  EXPECT_EQ(get("/api/settings").json(), expected);
  EXPECT_EQ(get("/api/settings/Comfy.B").json(), "x");
  EXPECT_TRUE(get("/api/settings/Comfy.None").json().is_null());
  EXPECT_EQ(post("/api/settings", "[1]").status, 400);
  EXPECT_EQ(post("/api/settings", "{oops").status, 400);
  EXPECT_EQ(get("/api/users").json(), json({{"storage", "server"}, {"migrated", true}}));
  expect_serving();
}

TEST(ServerHttp, OversizedMalformedAndSlowRequestsAreRefused) {
  // The limit is 1 MiB in these tests: a larger body is 413 (or the connection ends at once).
  const HttpReply big = post("/prompt", std::string((1 << 20) + 10, 'x'));
  EXPECT_TRUE(big.status == 413 || big.status == 0) << big.status;
  {
    RawSocket raw(port());
    ASSERT_TRUE(raw.write("POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n"));
    bool closed = false;
    const std::string answer = raw.read_until_closed(5, &closed);
    EXPECT_NE(answer.find(" 413 "), std::string::npos) << answer;
    EXPECT_TRUE(closed);
  }
  {
    RawSocket raw(port());
    ASSERT_TRUE(raw.write("THIS IS NOT HTTP\r\n\r\n"));
    bool closed = false;
    const std::string answer = raw.read_until_closed(5, &closed);
    EXPECT_NE(answer.find(" 400 "), std::string::npos) << answer;
    EXPECT_TRUE(closed);
  }
  {
    RawSocket raw(port());
    ASSERT_TRUE(raw.write("GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(100000, 'a') +
                          "\r\n\r\n"));
    bool closed = false;
    const std::string answer = raw.read_until_closed(5, &closed);
    EXPECT_NE(answer.find(" 431 "), std::string::npos) << answer.substr(0, 200);
  }
  {
    // A client that sends half a request and stops is cut off after the 1 s request timeout.
    RawSocket raw(port());
    ASSERT_TRUE(raw.write("GET /object_info HTTP/1.1\r\nHost: x\r\n"));
    bool closed = false;
    raw.read_until_closed(10, &closed);
    EXPECT_TRUE(closed);
  }
  {
    // Chunked bodies count against the limit too.
    RawSocket raw(port());
    std::string request = "POST /prompt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string chunk = "10000\r\n";
    chunk.append(0x10000, 'y');
    chunk += "\r\n";
    for (int i = 0; i < 20; ++i) request += chunk;
    raw.write(request);
    bool closed = false;
    const std::string answer = raw.read_until_closed(5, &closed);
    EXPECT_TRUE(answer.find(" 413 ") != std::string::npos || closed) << answer.substr(0, 200);
  }
  expect_serving();
}

TEST(ServerWs, BrokenFramesCloseOnlyThatSocket) {
  WsClient bystander(port(), "/ws?clientId=bystander");
  ASSERT_TRUE(bystander.connected());
  ASSERT_TRUE(bystander.next());
  {
    RawSocket raw(port());
    ASSERT_TRUE(raw.write("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n"));
    bool closed = false;
    // An unmasked client frame with a reserved opcode and a length past the message limit.
    raw.write(std::string("\x83\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10) + "garbage");
    const std::string answer = raw.read_until_closed(5, &closed);
    EXPECT_NE(answer.find("101"), std::string::npos) << answer.substr(0, 200);
    EXPECT_TRUE(closed);
  }
  {
    // A message larger than the 1 MiB socket limit ends that socket.
    WsClient flood(port(), "/ws?clientId=flood");
    ASSERT_TRUE(flood.connected());
    ASSERT_TRUE(flood.next());
    flood.send_text(std::string((1 << 20) + 1, 'z'));
    EXPECT_FALSE(flood.next(5));
  }
  // A WebSocket upgrade elsewhere is refused.
  WsClient elsewhere(port(), "/view");
  EXPECT_FALSE(elsewhere.connected());
  bystander.send_text(R"({"type": "feature_flags"})");
  EXPECT_TRUE(bystander.next());
  expect_serving();
}

// A client may send its first frame in the same packet as the upgrade request: the frame is read,
// not lost with the HTTP parser's buffer.
TEST(ServerWs, FrameSentWithTheUpgradeIsRead) {
  const std::string text = R"({"type": "feature_flags", "data": {}})";
  const unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
  std::string frame = {static_cast<char>(0x81), static_cast<char>(0x80 | text.size())};
  frame.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < text.size(); ++i) frame.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
  RawSocket raw(port());
  ASSERT_TRUE(raw.write("GET /ws?clientId=pipelined HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n" + frame));
  bool closed = false;
  const std::string answer = raw.read_until_closed(2, &closed);
  EXPECT_NE(answer.find("101"), std::string::npos) << answer.substr(0, 200);
  EXPECT_NE(answer.find("\"feature_flags\""), std::string::npos) << answer.substr(0, 400);
}

TEST(ServerAuth, TokenAndOriginGuardEveryRoute) {
  // A second server over the same engine, with a token (it runs no prompts).
  ServerOptions options;
  options.port = 0;
  options.user_dir = TestServer::shared().folders().user;
  options.token = "a-test-token-of-some-length";
  ComfyServer guarded(options, TestServer::shared().engine(), {});
  const uint16_t guarded_port = guarded.port();
  EXPECT_EQ(http_request(guarded_port, "GET", "/object_info").status, 401);
  EXPECT_EQ(http_request(guarded_port, "GET", "/object_info", "",
                         {{"Authorization", "Bearer wrong-token-of-some-length"}})
                .status,
            401);
  EXPECT_EQ(http_request(guarded_port, "GET", "/object_info", "",
                         {{"Authorization", "Bearer " + options.token}})
                .status,
            200);
  EXPECT_EQ(http_request(guarded_port, "GET", "/api/prompt?token=" + options.token).status, 200);
  const HttpReply page = http_request(guarded_port, "GET", "/?token=" + options.token);
  EXPECT_NE(page.header("set-cookie").find("wan_token=" + options.token), std::string::npos);
  EXPECT_EQ(http_request(guarded_port, "GET", "/api/prompt", "",
                         {{"Cookie", "other=1; wan_token=" + options.token}})
                .status,
            200);
  WsClient refused(guarded_port, "/ws");
  EXPECT_FALSE(refused.connected());
  WsClient admitted(guarded_port, "/ws?token=" + options.token);
  EXPECT_TRUE(admitted.connected());
  // A page of another site posting to this server: its Origin differs from the Host.
  EXPECT_EQ(post("/prompt", "{}", {{"Origin", "http://evil.example"}}).status, 403);
  EXPECT_EQ(post("/prompt", R"({"prompt": {}})",
                 {{"Origin", "http://127.0.0.1:" + std::to_string(port())}})
                .status,
            400);  // same origin: on to validation
  WsClient cross(port(), "/ws", {{"Origin", "http://evil.example"}});
  EXPECT_FALSE(cross.connected());
  expect_serving();
}

}  // namespace
}  // namespace wan::server::testing
