"""`python -m convert`: export a training run to .tflite (float32/float16/dynamic/int8, and int8
after quantisation-aware training on request) with metadata.

Examples:
  python -m convert --run runs/gan --variants float32,int8
  python -m convert --run runs/gan_ela --variants float32,int8,int8_qat --qat_epochs 2
  python -m convert --run runs/fakelens --variants int8 --threshold 0.62 --bake_threshold
  python -m convert --run runs/fakelens --variants float32,int8 --mirror_average
  python -m convert --run runs/fakelens --variants float32,int8_qat --threshold_target source_fpr_bound=0.05
  python -m convert --run runs/fakelens --tail sd21_faces  # -> runs/fakelens/export_tail_sd21_faces/
  python -m convert --run runs/fakelens --tail_offset auto --threshold_target source_fpr=0.05
"""
from __future__ import annotations

from absl import app, flags

from convert.variants import (CALIBRATION_SIZE, DEFAULT_VARIANTS, QAT_EPOCHS, QAT_LEARNING_RATE, VARIANTS,
                              check_threshold_target, check_variants, parse_tail_offsets)
from train.cli import main_entry, run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("run", None, "Training run folder (from `python -m train`).")
flags.DEFINE_string("out", None, "Output folder for the .tflite files (default: <run>/export).")
flags.DEFINE_list("variants", list(DEFAULT_VARIANTS), f"Which of {','.join(VARIANTS)} to export. int8_qat "
                  "fine-tunes with quantisation-aware training first (minutes on a CPU), for when int8 loses too much.")
flags.DEFINE_string("data", None, "Dataset for calibration and checks (default: the run's own).")
flags.DEFINE_float("threshold", 0.5, "Score threshold written into the metadata: fake when p(fake) >= it "
                   "(strictly between 0 and 1).", lower_bound=1e-9, upper_bound=1 - 1e-9)
flags.DEFINE_string("threshold_target", None, "Instead of --threshold: choose each file's threshold on its own "
                    "scores on the run's validation split, as benchmark.threshold --target does: 'balanced', "
                    "'fpr=<rate>' or 'source_fpr=<rate>' (e.g. source_fpr=0.05: at most 5% of every real "
                    "source's validation photos called fake), or 'fpr_bound=<rate>' / 'source_fpr_bound=<rate>' "
                    "(at most that chance for a NEW real photo of each source: one validation real fewer above the "
                    "threshold, the conformal rank). A quantised file (int8_qat) then gets its own operating point "
                    "in one run.")
flags.DEFINE_bool("bake_threshold", False, "Fold --threshold into the last layer, so that the top class is the "
                  "decision in any client (MediaPipe, Task Library): p(fake) >= 0.5 exactly when the unbaked "
                  "p(fake) >= threshold. The metadata's threshold becomes 0.5; files are named *_baked_*.")
flags.DEFINE_integer("calibration_size", CALIBRATION_SIZE, "Images of the run's training split (round-robin over "
                     "its sources) that calibrate int8 and int8_qat.", lower_bound=1)
flags.DEFINE_integer("check_images", 100, "Validation images for the float-vs-quantised agreement check.",
                     lower_bound=1)
flags.DEFINE_bool("ela_in_graph", False, "Put the (exact) ELA inside the .tflite: the model takes the resized RGB "
                  "image. Needs a run trained with --ela_resolution resized; float32 and int8 only.")
flags.DEFINE_bool("mirror_average", False, "Score the image and its mirror image and average them (as logits) "
                  "inside the .tflite: a mirrored photo gets exactly the same score, for a second forward pass. "
                  "Files are named *_mirror_*; choose --threshold on such an export. Not with int8_qat.")
flags.DEFINE_integer("qat_epochs", QAT_EPOCHS, "int8_qat: epochs of quantisation-aware training on the run's "
                     "training split.", lower_bound=1)
flags.DEFINE_float("qat_learning_rate", QAT_LEARNING_RATE, "int8_qat: Adam learning rate of the quantisation-aware "
                   "training.", lower_bound=1e-12)
flags.DEFINE_bool("qat_augment", False, "int8_qat: train on the run's own augmented views (one per epoch) "
                  "instead of the plain training images; needs a run trained with augmentation.")
flags.DEFINE_float("qat_label_weight", 0.0, "int8_qat: share of each image's label in QAT's targets (the rest is the "
                   "float model's scores, for experts each tail's logit; 0 = follow float32 only).",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_string("tail", None, "Export one tail of an experts run (trained with --experts): the tail of this "
                    "fake source alone, which is the run trained on the real sources and this source only (with two "
                    "fake sources, the leave-one-generator-out run without the other). Files: *_tail_<source>_*.")
flags.DEFINE_list("tail_offset", [], "SOURCE=LOGIT,... or auto: in an experts run's joined model, add LOGIT to "
                  "tail SOURCE's fake-minus-real logit before the maximum, so that its evidence is not drowned by a "
                  "tail that scores real photos higher. 'auto' chooses the offsets on the run's validation split "
                  "(needs --threshold_target). Choose the threshold after them (--threshold_target).")
flags.DEFINE_string("show", None, "Print the FakeLens metadata of a .tflite file and exit.")


def main(argv):
    if not FLAGS.run and not FLAGS.show:
        raise app.UsageError("--run is required: the training run folder to convert (or --show MODEL)")
    try:
        check_variants(FLAGS.variants, FLAGS.ela_in_graph)
        check_threshold_target(FLAGS.threshold_target, FLAGS.bake_threshold)
        tail_offsets = parse_tail_offsets(FLAGS.tail_offset, FLAGS.threshold_target)
    except ValueError as err:
        raise app.UsageError(str(err)) from None
    if FLAGS.threshold_target is not None and FLAGS["threshold"].present:
        raise app.UsageError("give --threshold or --threshold_target, not both")

    def job():
        import json
        from convert.metadata import read_model_info
        if FLAGS.show:
            print(json.dumps(read_model_info(FLAGS.show).to_json(), indent=2))
            return
        from convert.export import export_folder, export_run, format_report
        from train.io import output_lock
        with output_lock(export_folder(FLAGS.run, FLAGS.out, FLAGS.tail)):
            reports = export_run(FLAGS.run, FLAGS.out, FLAGS.variants, FLAGS.data, FLAGS.threshold,
                                 FLAGS.check_images, FLAGS.ela_in_graph, FLAGS.qat_epochs, FLAGS.qat_learning_rate,
                                 FLAGS.bake_threshold, FLAGS.calibration_size, FLAGS.mirror_average,
                                 FLAGS.qat_augment, FLAGS.threshold_target, FLAGS.qat_label_weight, FLAGS.tail,
                                 tail_offsets)
        print(format_report(reports))

    return run_main(job)


if __name__ == "__main__":
    main_entry(main)
