// One front for every data source, from a spec string (the `--data` flag):
//
//   fashion-mnist[:dir=DIR]                   Debian's dataset-fashion-mnist (train + t10k)
//   libsvm:path=FILE[,test=FILE][,features=D][,labels=auto|regression|classes]
//   FILE.svm | FILE.libsvm | FILE.txt [.gz]    shorthand for libsvm:path=FILE
//   idx:images=FILE,labels=FILE[,test_images=FILE,test_labels=FILE]
//   synthetic:n=..,d=..,cond=..,task=..,classes=..,noise=..,seed=..,rotate=..  (synthetic.hpp)
//
// Options every source takes, applied in this order:
//   classes=A/B[/C...]   keep only these classes (raw label values), renumbered in the order
//                        given; two classes make a binary problem ("fashion-mnist:classes=0/6",
//                        T-shirt vs shirt). See select_classes(). Not for synthetic data,
//                        where classes=K is the number of classes to generate.
//   limit=N              keep the first N training rows
//   test_fraction=F      carve a seeded random test set out of the training rows (only for
//                        sources without their own test set); split_seed=S picks the shuffle
// Unknown keys are errors (InvalidArgument naming the source and key); file problems are IoError.
#pragma once

#include <string_view>

#include "thinwire/data/dataset.hpp"

namespace thinwire::data {

// The test set is empty when the source has none and no test_fraction is given.
[[nodiscard]] TrainTest load_dataset(std::string_view spec);

}  // namespace thinwire::data
