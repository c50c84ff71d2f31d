#include "braid/dashboard/source.h"

namespace braid::dashboard {

using nlohmann::json;

json SpecSummary(const spec::JobSpec& job) {
  json tenants = json::array();
  for (const spec::Tenant& t : job.tenants) {
    tenants.push_back(json{{"name", t.name}, {"replicas", t.replicas}});
  }
  return json{{"model",
               {{"kind", job.model.kind},
                {"hidden", job.model.mlp.hidden},
                {"num_classes", job.model.mlp.num_classes}}},
              {"strategy",
               {{"name", job.strategy.name},
                {"rounds", job.strategy.rounds},
                {"min_clients", job.strategy.min_clients},
                {"fraction_fit", job.strategy.fraction_fit},
                {"round_timeout_seconds", job.strategy.round_timeout_seconds}}},
              {"training",
               {{"local_epochs", job.training.local_epochs},
                {"batch_size", job.training.batch_size},
                {"learning_rate", job.training.learning_rate},
                {"optimizer", job.training.optimizer}}},
              {"tenants", tenants},
              {"privacy", nullptr}};
}

json JobRow(const std::string& ns, const std::string& name, const json& status,
            const json& total_rounds, const json& spec_max_epsilon) {
  const json s = status.is_object() ? status : json::object();
  const json metrics = s.value("metrics", json::object());
  const json privacy = s.value("privacy", json::object());
  return json{{"namespace", ns},
              {"name", name},
              {"phase", s.value("phase", "Pending")},
              {"reason", s.value("reason", "")},
              {"message", s.value("message", "")},
              {"round", s.value("round", 0)},
              {"total_rounds", total_rounds},
              {"train_loss", metrics.value("trainLoss", json(nullptr))},
              {"eval_loss", metrics.value("evalLoss", json(nullptr))},
              {"eval_accuracy", metrics.value("evalAccuracy", json(nullptr))},
              {"epsilon", privacy.value("epsilon", json(nullptr))},
              {"max_epsilon", privacy.value("maxEpsilon", spec_max_epsilon)}};
}

}  // namespace braid::dashboard
