/**
 * envoy.service.ext_proc.v3.ExternalProcessor/Process: one bidirectional stream per HTTP
 * request, answered message by message by a ProcessingStream. Registered on a gRPC server by
 * addToServer (the server is the caller's: same process as ext_authz, or its own).
 */
import type * as grpc from '@grpc/grpc-js';
import { externalProcessorService } from '../../proto/envoy.js';
import type { ProcessingRequest, ProcessingResponse } from './messages.js';
import { resolveSettings, type ExtProcOptions, type ExtProcSettings } from './settings.js';
import { ProcessingStream } from './stream.js';

export const EXT_PROC_SERVICE_NAME = 'envoy.service.ext_proc.v3.ExternalProcessor';

export class ExternalProcessorService {
  private readonly settings: ExtProcSettings;
  private open = 0;

  constructor(options: ExtProcOptions) {
    this.settings = resolveSettings(options);
  }

  get openStreams(): number {
    return this.open;
  }

  addToServer(server: grpc.Server): void {
    server.addService(externalProcessorService(), { Process: this.process.bind(this) });
  }

  private process(call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>): void {
    const stream = new ProcessingStream(this.settings);
    this.open++;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      this.open--;
      call.end();
    };
    call.on('data', (req: ProcessingRequest) => {
      if (ended) return;
      call.write(stream.handle(req));
      if (stream.finished) end();
    });
    call.on('end', end);
    call.on('error', end);
    call.on('cancelled', end);
  }
}
