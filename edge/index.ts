// Edge worker wiring: middleware order, route mounting, Durable Object export. Logic lives in routes/ and jobs/.
import { Hono } from 'hono';
import type { AppEnv } from './http/app.ts';
import { conventions, publicCors } from './http/conventions.ts';
import { problem } from './http/problem.ts';
import { admin } from './routes/admin.ts';
import { images } from './routes/images.ts';
import { cdn } from './routes/cdn.ts';
import { internal } from './routes/internal.ts';
import { meta } from './routes/meta.ts';
import { videos } from './routes/videos.ts';

export { JobStore } from './jobs/JobStore.ts';

const app = new Hono<AppEnv>();

app.use('*', conventions);
app.use('/cdn/*', publicCors);
app.use('/openapi.json', publicCors);
app.route('/', meta);
app.route('/v1/videos', videos);
app.route('/v1/images', images);
app.route('/cdn', cdn);
app.route('/internal/v1', internal);
app.route('/admin/v1', admin);

app.notFound((c) => problem({ status: 404, code: 'not_found', detail: `No route for ${c.req.method} ${new URL(c.req.url).pathname}.` }));
app.onError((err, c) => {
  // Log the message only (never request headers: they carry keys); the client gets no stack trace.
  const msg = err instanceof Error ? err.message : String(err);
  console.error(`${c.get('requestId')} unhandled: ${msg}`);
  // An overloaded / restarting Durable Object is transient: say "no" with a retry hint rather than 500.
  const e = err as { retryable?: boolean; overloaded?: boolean };
  if (e.retryable || e.overloaded || /durable object|overloaded|network connection lost/i.test(msg))
    return problem({ status: 503, code: 'temporarily_unavailable', detail: 'The job store is busy or restarting; retry shortly.', retryAfter: 1 });
  return problem({ status: 500, code: 'internal_error', detail: 'Internal error; the request was not completed. Retry later.' });
});

export default app;
