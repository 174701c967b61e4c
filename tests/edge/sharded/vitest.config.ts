// The edge's workerd tests that need several job-store shards (JOB_SHARDS = 4).
import { edgeProject } from '../vitest.config.ts';

export default edgeProject({ name: 'edge-sharded', exclude: [], bindings: { JOB_SHARDS: '4' } });
