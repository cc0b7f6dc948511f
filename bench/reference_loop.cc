// The benchmark's yardstick: the least a churn client can do. N sockets in flight on one epoll
// loop, each doing non-blocking connect, write 4 bytes, read 4 bytes, close, and again (or, with
// `http`, write one GET with Connection: close and read to the server's FIN). No pacing, no
// timeouts, no per-source counting, no histograms: whatever churnlab's engine spends beyond this
// is its own overhead.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct Target {
  sockaddr_in addr;
};

}  // namespace

// Long: the reference loop is meant to be read in one piece beside agent/engine_worker.cc, as
// the plainest possible connect-exchange-close loop the engine is measured against.
int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: %s IPv4:PORT[,IPv4:PORT...] CONCURRENCY SECONDS [counter|http]\n",
                 argv[0]);
    return 2;
  }
  const bool http = argc == 5 && std::string(argv[4]) == "http";
  const std::string request =
      http ? "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
           : std::string("\x01\0\0\0", 4);  // the counter protocol's int32 1, little-endian
  std::vector<int> got(1 << 20);            // http: bytes of the response so far, per fd
  std::vector<Target> targets;
  std::string list = argv[1];
  for (size_t at = 0; at < list.size();) {
    size_t comma = list.find(',', at);
    std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? list.size() : comma + 1;
    size_t colon = item.rfind(':');
    Target t{};
    t.addr.sin_family = AF_INET;
    t.addr.sin_port = htons(std::atoi(item.c_str() + colon + 1));
    if (colon == std::string::npos ||
        inet_pton(AF_INET, item.substr(0, colon).c_str(), &t.addr.sin_addr) != 1) {
      std::fprintf(stderr, "bad target '%s'\n", item.c_str());
      return 2;
    }
    targets.push_back(t);
  }
  int concurrency = std::atoi(argv[2]);
  double seconds = std::atof(argv[3]);
  if (concurrency < 1 || !(seconds > 0 && seconds <= 600)) {
    std::fprintf(stderr, "need CONCURRENCY >= 1 and 0 < SECONDS <= 600\n");
    return 2;
  }
  int ep = epoll_create1(0);
  // state per fd: 0 connecting, 1 reading
  std::vector<char> state(1 << 20);
  long done = 0, failed = 0;
  size_t next = 0;
  auto start_one = [&] {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    const Target& t = targets[next++ % targets.size()];
    if (fd < 0 || (connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), sizeof(t.addr)) != 0 &&
                   errno != EINPROGRESS)) {
      ++failed;
      if (fd >= 0) close(fd);
      return false;
    }
    state[fd] = 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return true;
  };
  int open = 0;
  double end = Now() + seconds;
  double began = Now();
  std::vector<epoll_event> events(1024);
  while (Now() < end) {
    while (open < concurrency && start_one()) ++open;
    int n = epoll_wait(ep, events.data(), events.size(), 10);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        close(fd);
        --open;
        ++failed;
        continue;
      }
      if (state[fd] == 0 && (events[i].events & EPOLLOUT)) {
        got[fd] = 0;
        if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
          close(fd);
          --open;
          ++failed;
          continue;
        }
        state[fd] = 1;
      } else if (state[fd] == 1 && (events[i].events & EPOLLIN)) {
        char buf[4096];
        ssize_t r;
        // http: to the server's FIN (edge-triggered: read until it would block)
        while (http && (r = recv(fd, buf, sizeof(buf), 0)) > 0) got[fd] += static_cast<int>(r);
        if (!http) r = recv(fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EAGAIN) continue;
        close(fd);
        --open;
        if (http ? r == 0 && got[fd] > 0 : r == 4)
          ++done;
        else
          ++failed;
      }
    }
  }
  double elapsed = Now() - began;
  std::printf("reference: %.0f conn/s ok (%ld ok, %ld failed in %.1fs)\n", done / elapsed, done,
              failed, elapsed);
  return 0;
}
