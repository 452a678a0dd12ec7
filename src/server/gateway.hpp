#pragma once
// The gateway: the composition of the stages. It owns the shared services, answers the
// listener's requests by dispatching through the route table (request id, gateway key,
// method), and leaves each endpoint's work to its handler under endpoints/.
//   listener -> endpoint -> parse -> count -> route -> upstream -> meter -> ledger -> response
#include "server/services.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace turnout::server {

class Gateway {
 public:
  // `executors`: one per event-loop thread, in HttpServer worker order.
  static Result<std::unique_ptr<Gateway>> create(config::Config config, ledger::Ledger& ledger,
                                                 std::vector<boost::asio::any_io_executor> executors,
                                                 GatewayOptions options);
  ~Gateway();

  boost::asio::awaitable<std::optional<HttpResponse>> handle(HttpRequest& request, Connection& connection);
  // Answers for requests the listener refuses before a handler runs (OpenAI error shape).
  listener::RejectionResponses rejections();

  // Applies a re-read config (SIGHUP): apply_reload (reload.hpp), as POST /admin/v1/reload does.
  void reload(Result<config::Config> loaded);

  // Once the event loops have stopped, before the ledger closes: gives the ledger writer
  // any record still waiting in a thread's outbox (ledger_outbox.hpp) for a turn of its
  // loop that did not come.
  void hand_over_held_records();

  // Once the event loops have stopped: closes the upstream connections idle in each
  // thread's pool, so that none outlives the loop it belongs to.
  void close_idle_connections();

 private:
  Gateway(std::shared_ptr<const ConfigSnapshot> initial, ledger::Ledger& ledger, GatewayOptions options);
  // From the cache on the event loop, else on the blocking pool (it may wait on the database).
  boost::asio::awaitable<admit::Authenticated> authenticate_virtual_key(std::string_view token);

  Services services_;
  // The admin API's refusal of `token`, or none when it is governance.admin_key.
  std::optional<HttpResponse> refuse_admin(std::string_view token, unsigned version);

  // "" when governance.admin_key is empty: the admin API is off. governance.* is read at
  // start-up only (a reload does not change it).
  std::string admin_key_sha256_;
  std::vector<std::unique_ptr<WorkerState>> workers_;
};

}  // namespace turnout::server
