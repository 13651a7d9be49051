// Home page: only the shared header/footer is dynamic.
import { renderShell } from '../shell.js';

renderShell('home');
