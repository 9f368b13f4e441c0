//! Dataset readers, preparation and augmentation (being written).
