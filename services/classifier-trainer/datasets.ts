/**
 * Transitional: core/data/datasets.ts's `loadDataset` with its Tiny ImageNet cache on an object
 * store. New code imports core/data/datasets.ts and platform/store/cache.ts directly.
 * @module
 */
import { type Dataset, loadDataset as load } from "../../core/data/datasets.ts";
import { storeCache } from "../../platform/store/cache.ts";
import type { ObjectStore } from "../../platform/store/types.ts";

export type { Dataset };

/** The data set named by `uri`, its decoded Tiny ImageNet arrays cached in `store`. */
export function loadDataset(uri: string, store?: ObjectStore): Promise<Dataset> {
  return load(uri, store ? storeCache(store) : undefined);
}
