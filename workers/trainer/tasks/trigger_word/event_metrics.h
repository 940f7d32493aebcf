// Event-level scoring of trigger-word outputs. Per-step accuracy misleads (an all-zero output
// scores over 90 %), so detections are counted as events:
//  - a detection is a step whose output exceeds the threshold, at most one per
//    `refractory_steps` steps (the lecture's chime rule);
//  - it is a true positive when it falls within [end, end + tolerance_steps] of a trigger's end
//    step not matched yet; otherwise a false positive; a trigger left unmatched is a miss.
// Torch-free: the trainer's evaluation and the inference command share it.
#ifndef DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_EVENT_METRICS_H_
#define DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_EVENT_METRICS_H_

#include <cstdint>
#include <vector>

namespace dtrain::trainer {

std::vector<int> DetectTriggers(const float* outputs, int steps, double threshold,
                                int refractory_steps);

struct EventCounts {
  int64_t true_positives = 0;
  int64_t false_positives = 0;
  int64_t misses = 0;

  void Add(const EventCounts& o) {
    true_positives += o.true_positives;
    false_positives += o.false_positives;
    misses += o.misses;
  }
  // With no detections precision is 1 (nothing claimed wrongly); with no triggers recall is 1.
  double Precision() const;
  double Recall() const;
  double F1() const;
};

// Matches detections (ascending steps) to triggers (their end steps, ascending).
EventCounts MatchEvents(const std::vector<int>& detections, const std::vector<int>& trigger_ends,
                        int tolerance_steps);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_TASKS_TRIGGER_WORD_EVENT_METRICS_H_
