// Entry point of the renderer bundle: puts zod in CSP-safe mode, loads the styles and mounts <App/> into #root.
// Everything else (host connection, autosave, shortcuts) starts from App.
import './zod-jitless.js';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@xyflow/react/dist/style.css';
import './styles.css';
import { App } from './App.js';

const container = document.getElementById('root');
if (!container) throw new Error('renderer/index.html has no #root element');
createRoot(container).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
