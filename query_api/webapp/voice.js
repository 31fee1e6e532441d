// Voice messages: record with MediaRecorder, measure, upload straight to storage through the
// presigned POST (seed scenario 3, with every signed field), and draw the waveform.

const TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"];
const BARS = 64;

/** Starts recording from the microphone; `stop()` resolves to the recorded Blob. */
export async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const mimeType = TYPES.find((type) => MediaRecorder.isTypeSupported(type));
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.start();
  return {
    stop: () => new Promise((resolve) => {
      recorder.onstop = () => {
        stream.getTracks().forEach((track) => track.stop());
        resolve(new Blob(chunks, { type: recorder.mimeType }));
      };
      recorder.stop();
    }),
  };
}

/** The message payload of a recording: its real duration (a MediaRecorder file often states
 * none) and a waveform of BARS peaks scaled to 0..255, from the decoded audio. */
export async function describe(blob) {
  const context = new OfflineAudioContext(1, 1, 48000);
  const audio = await context.decodeAudioData(await blob.arrayBuffer());
  const samples = audio.getChannelData(0);
  const size = Math.max(1, Math.floor(samples.length / BARS));
  const peaks = [];
  for (let bar = 0; bar < BARS; bar++) {
    let peak = 0;
    for (let i = bar * size; i < Math.min((bar + 1) * size, samples.length); i++) {
      peak = Math.max(peak, Math.abs(samples[i]));
    }
    peaks.push(peak);
  }
  const top = Math.max(...peaks) || 1;
  const codec = (blob.type.match(/codecs=([\w.+-]+)/) || [, blob.type.split("/")[1]])[1];
  return {
    duration_ms: Math.max(1, Math.round(audio.duration * 1000)),
    codec: codec.toLowerCase(),
    waveform: peaks.map((peak) => Math.round((peak / top) * 255)),
  };
}

/** Uploads the blob to storage; resolves to its attachment id. The form carries every entry of
 * `fields` (the policy binds them all), then the file as the last part. */
export async function upload(auth, blob) {
  const type = blob.type.split(";")[0];
  const presigned = await auth.request("POST", "/attachments", {
    filename: `voice.${type.split("/")[1]}`, content_type: type,
  });
  const form = new FormData();
  for (const [name, value] of Object.entries(presigned.fields)) form.append(name, value);
  form.append("file", blob);
  const response = await fetch(presigned.url, { method: "POST", body: form });
  if (!response.ok) throw new Error(`upload failed: ${response.status}`);
  return presigned.attachment_id;
}

/** Bars of the waveform; those before `played` (0..1) in the accent colour. */
export function drawWaveform(canvas, waveform, played = 0) {
  const g = canvas.getContext("2d");
  const bars = waveform?.length ? waveform : [0];
  const width = canvas.width / bars.length;
  const style = getComputedStyle(canvas);
  g.clearRect(0, 0, canvas.width, canvas.height);
  bars.forEach((value, i) => {
    const height = Math.max(2, (value / 255) * canvas.height);
    g.fillStyle = i / bars.length < played ? style.color : style.borderColor;
    g.fillRect(i * width + 1, (canvas.height - height) / 2, Math.max(1, width - 2), height);
  });
}
